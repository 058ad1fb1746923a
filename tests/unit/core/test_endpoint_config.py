"""Config documents read into typed values and written back unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from berth.core.endpoint_config import (
    EndpointConfigDoc,
    EntityState,
    ExternalModel,
    ServedEntity,
    TrafficRoute,
)
from berth.core.states import DeploymentState

MODEL_ENTITY: dict[str, Any] = {
    "name": "iris-1",
    "entity_name": "iris",
    "entity_version": "1",
    "workload_size": "Small",
    "workload_type": "CPU",
    "scale_to_zero_enabled": False,
    "environment_vars": {"MODE": "fast"},
    "max_batch_size": 8,
    "max_batch_wait_ms": 2.5,
    "creator": "admin",
    "creation_timestamp": 1700000400000,
    "state": {"deployment": "DEPLOYMENT_READY", "deployment_state_message": "1/1 replicas ready."},
}
EXTERNAL_ENTITY: dict[str, Any] = {
    "name": "chat",
    "external_model": {
        "name": "gpt-4o",
        "provider": "openai",
        "task": "llm/v1/chat",
        "openai_config": {"openai_api_key": "{{secrets/llm/openai}}"},
    },
    "creator": "admin",
    "creation_timestamp": 1,
    "state": {"deployment": "DEPLOYMENT_CREATING", "deployment_state_message": "Queued."},
}
PENDING: dict[str, Any] = {
    "config_version": 2,
    "start_time": 1700000400000,
    "served_entities": [MODEL_ENTITY, EXTERNAL_ENTITY],
    "traffic_config": {
        "routes": [
            {"served_entity_name": "iris-1", "traffic_percentage": 70},
            {"served_entity_name": "chat", "traffic_percentage": 30},
        ]
    },
    "auto_capture_config": {"catalog_name": "main", "enabled": True},
}


@pytest.mark.parametrize(
    "stored",
    [
        PENDING,
        {
            "config_version": 1,
            "served_entities": [EXTERNAL_ENTITY],
            "traffic_config": {
                "routes": [{"served_entity_name": "chat", "traffic_percentage": 100}]
            },
        },
    ],
)
def test_a_stored_document_round_trips(stored: dict[str, Any]) -> None:
    doc = EndpointConfigDoc.from_json(stored)
    assert doc.to_json() == stored
    assert EndpointConfigDoc.from_json(doc.to_json()) == doc


def test_the_reader_types_what_the_rest_reads() -> None:
    doc = EndpointConfigDoc.from_json(PENDING)
    model, external = doc.served_entities
    assert model.registered_model == ("iris", "1")
    assert model.environment_vars == {"MODE": "fast"}
    assert model.state == EntityState(DeploymentState.READY, "1/1 replicas ready.")
    assert external.registered_model is None
    assert external.external_model == ExternalModel(
        "gpt-4o",
        "openai",
        "llm/v1/chat",
        {"openai_config": {"openai_api_key": "{{secrets/llm/openai}}"}},
    )
    assert (doc.traffic("iris-1"), doc.traffic("chat"), doc.traffic("other")) == (70, 30, 0)
    assert doc.entity("chat") is external and doc.entity("other") is None


def test_left_out_fields_stay_left_out() -> None:
    entity = ServedEntity.from_json({"name": "e", "entity_name": "m", "entity_version": "1"})
    assert entity.workload_size is None and entity.state is None
    assert entity.to_json() == {"name": "e", "entity_name": "m", "entity_version": "1"}


def test_an_old_numeric_version_and_a_served_model_name_route_are_read() -> None:
    doc = EndpointConfigDoc.from_json(
        {
            "config_version": 1,
            "served_entities": [{"name": "e", "entity_name": "m", "entity_version": 3}],
            "traffic_config": {"routes": [{"served_model_name": "e", "traffic_percentage": 100}]},
        }
    )
    assert doc.served_entities[0].entity_version == "3"
    assert doc.routes == (TrafficRoute("e", 100),)


def test_states_are_read_and_recorded_per_entity() -> None:
    doc = EndpointConfigDoc.from_json(PENDING)
    failed = EntityState(DeploymentState.FAILED, "boom")
    updated = doc.with_states({"chat": failed})
    assert updated.states() == {"iris-1": doc.states()["iris-1"], "chat": failed}
    assert updated.to_json()["served_entities"][1]["state"] == {
        "deployment": "DEPLOYMENT_FAILED",
        "deployment_state_message": "boom",
    }
    assert doc.states()["chat"].deployment == DeploymentState.CREATING, "the original stays"
