"""Open LLMs sized in throughput, as the controller runs them: one replica per chunk of the
version on this host, the band on the route, and waiting while the chunk is measured."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from berth.controller.targets import ArtifactRef, Runtime, config_target
from berth.core.dataplane import ProvisionedBand, ReplicaProtocol
from berth.core.endpoint_config import EndpointConfigDoc, EntityState
from berth.core.states import ConfigUpdate, DeploymentState
from berth.core.throughput import LLM_SLOTS
from berth.store import calibrations as calibration_store
from berth.store import models as model_store
from berth.store.db import Database
from tests.support.throughput import calibration
from tests.unit.controller.support import World, create, update

ENVIRONMENT: dict[str, Any] = {"hash": None}


def register_llm(db: Database) -> None:
    """Model ``smol`` version 1, an open LLM."""
    with db.transaction() as session:
        model_store.create_model(
            session, name="smol", description="", tags=[], creator="ann", now_ms=1
        )
        number = model_store.allocate_version(session, "smol", 1)
        new = model_store.NewVersion(
            source="/src/smol",
            format="gguf",
            status="READY",
            artifact_path="/artifacts/smol/1",
            details={"weights": "smol.gguf", "environment": ENVIRONMENT},
            description="",
            creator="ann",
        )
        model_store.add_version(session, "smol", number, new, 1)


def measured(world: World, chunk: int) -> None:
    """The version's chunk on this host, as a calibration stores it."""
    fingerprint = world.controller.calibrations.fingerprint(ENVIRONMENT)
    with world.db.transaction() as session:
        calibration_store.save(session, "smol", 1, calibration(chunk, fingerprint))


def llm_document(**entity: Any) -> EndpointConfigDoc:
    return EndpointConfigDoc.from_json(
        {
            "config_version": 1,
            "served_entities": [
                {"name": "smol-1", "entity_name": "smol", "entity_version": "1", **entity}
            ],
            "traffic_config": {
                "routes": [{"served_entity_name": "smol-1", "traffic_percentage": 100}]
            },
        }
    )


def test_one_replica_per_chunk_of_the_minimum_and_the_band_on_the_route(
    db: Database, envs: Path
) -> None:
    async def scenario() -> None:
        register_llm(db)
        world = World(db, envs)
        measured(world, 100)
        create(
            db, "chat", llm_document(min_provisioned_throughput=200, max_provisioned_throughput=400)
        )
        await world.reconcile()
        started = world.backend.started
        assert len(started) == 2
        assert {world.backend.statuses[r].spec.max_concurrency for r in started} == {LLM_SLOTS}
        for replica in started:
            world.backend.ready(replica)
        await world.reconcile()
        [routed] = world.bus.current.endpoints["chat"].entities
        assert routed.provisioned == ProvisionedBand(100, 200, 400)
        assert routed.protocol is ReplicaProtocol.OPENAI
        assert len(routed.replicas) == 2

        measured(world, 50)  # measured again, slower: the same band takes twice the replicas
        await world.reconcile()
        assert len(world.backend.started) == 4
        [routed] = world.bus.current.endpoints["chat"].entities
        assert routed.provisioned == ProvisionedBand(50, 200, 400)
        await world.controller.close()

    asyncio.run(scenario())


def test_model_units_without_burst_run_one_replica_per_unit(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register_llm(db)
        world = World(db, envs)
        measured(world, 100)
        create(db, "units", llm_document(provisioned_model_units=3, burst_scaling_enabled=False))
        await world.reconcile()
        assert len(world.backend.started) == 3
        (scale,) = world.controller.scale("units").values()
        assert scale.desired == 3
        await world.controller.close()

    asyncio.run(scenario())


def test_an_entity_whose_chunk_is_being_measured_waits_with_what_it_waits_for() -> None:
    waiting = EntityState(DeploymentState.CREATING, "Measuring the throughput chunk")
    target = config_target(
        "chat",
        "ep-id",
        llm_document(min_provisioned_throughput=100, max_provisioned_throughput=200),
        lambda _model, _version: ArtifactRef("/artifacts/smol/1", "gguf", ENVIRONMENT),
        lambda _artifact: Runtime("/envs/python"),
        lambda block: block,
        lambda _model, _version: waiting,
    )
    [entity] = target.entities
    assert (entity.spec, entity.replicas, entity.blocked, entity.provisioned) == (
        None,
        0,
        waiting,
        None,
    )


def test_more_units_of_the_same_version_are_running_before_the_update_is_promoted(
    db: Database, envs: Path
) -> None:
    async def scenario() -> None:
        register_llm(db)
        world = World(db, envs)
        measured(world, 100)
        create(db, "units", llm_document(provisioned_model_units=1, burst_scaling_enabled=False))
        await world.reconcile()
        (first,) = world.backend.started
        world.backend.ready(first)
        await world.reconcile()
        two = llm_document(provisioned_model_units=2, burst_scaling_enabled=False)
        update(db, "units", replace(two, config_version=2))
        await world.reconcile()
        (_, second) = world.backend.started  # the same spec: one more replica beside the first
        assert world.endpoint("units").config_update is ConfigUpdate.IN_PROGRESS
        world.backend.ready(second)
        await world.reconcile()
        assert world.endpoint("units").config_update is ConfigUpdate.NOT_UPDATING
        [routed] = world.bus.current.endpoints["units"].entities
        assert len(routed.replicas) == 2
        assert routed.provisioned == ProvisionedBand(100, 200, 200)
        await world.controller.close()

    asyncio.run(scenario())
