"""A replica's spec carries its version's environment spec, for backends that build it where
the replica runs (the ray backend's nodes)."""

from __future__ import annotations

import json
from typing import Any

from berth.controller.targets import ArtifactRef, Runtime, config_target
from berth.core.endpoint_config import EndpointConfigDoc

SPEC = {"python": "3.11", "requirements": ["tinypkg==0.1"], "constraints": []}
DOCUMENT = EndpointConfigDoc.from_json(
    {
        "config_version": 1,
        "served_entities": [{"name": "m-1", "entity_name": "m", "entity_version": "1"}],
        "traffic_config": {"routes": [{"served_entity_name": "m-1", "traffic_percentage": 100}]},
    }
)


def environment_of(details: dict[str, Any]) -> str | None:
    target = config_target(
        "ep",
        "ep-id",
        DOCUMENT,
        lambda _model, _version: ArtifactRef("/artifacts/m/1", "score_py", details),
        lambda _artifact: Runtime("/home/envs/h/bin/python", "/home/envs/runtime/r"),
        lambda block: block,
        lambda _model, _version: 0,
    )
    [entity] = target.entities
    assert entity.spec is not None
    return entity.spec.environment


def test_a_replica_spec_carries_its_environment_spec_or_none_for_berths_own() -> None:
    built = environment_of({"hash": "h", "spec": SPEC, "summary": "Python 3.11 with 1"})
    assert built is not None and json.loads(built) == SPEC
    assert environment_of({"hash": None, "summary": "berth's own"}) is None


def test_an_open_llms_replica_asks_the_memory_its_weights_take() -> None:
    def memory_of(artifact: ArtifactRef) -> int:
        target = config_target(
            "ep",
            "ep-id",
            DOCUMENT,
            lambda _model, _version: artifact,
            lambda _artifact: Runtime("/usr/bin/python3"),
            lambda block: block,
            lambda _model, _version: 0,
        )
        [entity] = target.entities
        assert entity.spec is not None
        return entity.spec.memory_mb

    own = {"hash": None}
    assert memory_of(ArtifactRef("/a/m/1", "gguf", own, weights_bytes=98_362_432)) == 94
    assert memory_of(ArtifactRef("/a/m/1", "gguf", own, weights_bytes=2**20)) == 1
    assert memory_of(ArtifactRef("/a/m/1", "score_py", own)) == 0
