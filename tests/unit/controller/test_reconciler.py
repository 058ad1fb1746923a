"""Rollouts as the controller drives them, pass by pass, over an in-memory backend."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from berth.core.endpoint_config import EndpointConfigDoc
from berth.core.states import ConfigUpdate, EndpointReady, EventType
from berth.store.db import Database
from tests.unit.controller.support import (
    MemoryBackend,
    World,
    cancel,
    create,
    document,
    register,
    serving,
    settle,
    update,
)


def test_new_endpoint_serves_once_its_replica_is_ready(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db)
        world = World(db, envs)
        create(db, "ep", document(1, 1))
        await world.reconcile()
        (replica,) = world.backend.started
        assert world.routed("ep") == []
        assert world.endpoint("ep").config_update is ConfigUpdate.IN_PROGRESS

        world.backend.ready(replica)
        await world.reconcile()
        record = world.endpoint("ep")
        assert (record.config_update, record.ready) == (
            ConfigUpdate.NOT_UPDATING,
            EndpointReady.READY,
        )
        assert record.config_version == 1
        assert world.routed("ep") == [replica]
        assert (
            EventType.CONFIG_UPDATED,
            "Config version 1 is ready and now serves all traffic.",
        ) in (world.events("ep"))
        await world.controller.close()

    asyncio.run(scenario())


def test_update_starts_beside_the_old_switches_when_ready_then_retires_the_old(
    db: Database, envs: Path
) -> None:
    async def scenario() -> None:
        register(db, versions=2)
        world = World(db, envs)
        old = await serving(world)
        update(db, "ep", document(2, 2))

        await world.reconcile()
        new = world.backend.of(2)
        assert set(world.backend.statuses) == {old, new}
        assert world.routed("ep") == [old]
        assert world.endpoint("ep").config_update is ConfigUpdate.IN_PROGRESS

        world.backend.ready(new)
        await world.reconcile()
        record = world.endpoint("ep")
        assert (record.config_update, record.config_version) == (ConfigUpdate.NOT_UPDATING, 2)
        assert world.routed("ep") == [new]
        assert old in world.backend.statuses  # retired on the pass after the switch

        await world.reconcile()
        await settle(lambda: old not in world.backend.statuses)
        assert world.drained == [old]
        assert world.backend.stopped == [old]
        assert world.routed("ep") == [new]
        await world.controller.close()

    asyncio.run(scenario())


def test_cancelled_update_retires_its_replicas_and_the_old_config_keeps_serving(
    db: Database, envs: Path
) -> None:
    async def scenario() -> None:
        register(db, versions=2)
        world = World(db, envs)
        old = await serving(world)
        update(db, "ep", document(2, 2))
        await world.reconcile()
        new = world.backend.of(2)

        cancel(db, "ep")
        await world.reconcile()
        await settle(lambda: new not in world.backend.statuses)
        assert world.drained == [new]
        assert list(world.backend.statuses) == [old]
        assert world.routed("ep") == [old]
        record = world.endpoint("ep")
        assert (record.config_update, record.config_version) == (ConfigUpdate.UPDATE_CANCELED, 1)
        await world.controller.close()

    asyncio.run(scenario())


def test_crash_looping_replica_fails_the_update_with_its_reason(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db, versions=2)
        world = World(db, envs)
        old = await serving(world)
        update(db, "ep", document(2, 2))
        await world.reconcile()
        new = world.backend.of(2)

        for _ in range(2):  # restarting: the update waits
            world.backend.crash(new, "exited with code 1: ImportError: no module named 'numpy'")
            await world.reconcile()
            assert world.endpoint("ep").config_update is ConfigUpdate.IN_PROGRESS

        world.backend.fail(new, "crashed 3 times: ImportError: no module named 'numpy'")
        await world.reconcile()
        record = world.endpoint("ep")
        assert (record.config_update, record.config_version) == (ConfigUpdate.UPDATE_FAILED, 1)
        assert world.routed("ep") == [old]
        failed = [m for kind, m in world.events("ep") if kind == EventType.UPDATE_FAILED]
        assert failed == [
            "Config version 2 failed: Served entity 'sum-entity' failed: crashed 3 times: "
            "ImportError: no module named 'numpy' Config version 1 keeps serving."
        ]

        await world.reconcile()  # the failed replica is nobody's any more
        await settle(lambda: new not in world.backend.statuses)
        assert world.routed("ep") == [old]
        await world.controller.close()

    asyncio.run(scenario())


def test_exited_replica_is_started_again(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db)
        world = World(db, envs)
        replica = await serving(world)

        world.backend.exit(replica)
        await world.reconcile()
        assert world.backend.started == [replica, replica]
        assert world.routed("ep") == []
        assert world.endpoint("ep").ready is EndpointReady.NOT_READY
        await world.controller.close()

    asyncio.run(scenario())


def test_restarted_controller_adopts_the_replicas_still_running(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db)
        before = World(db, envs)
        replica = await serving(before)
        running = before.backend.replicas()

        after = World(db, envs, MemoryBackend(running))
        decided = await after.reconcile()
        assert decided.start == () and decided.stop == ()
        assert after.backend.started == []
        assert after.routed("ep") == [replica]
        assert after.controller.scale("ep") == {(1, "sum-entity"): (1, 1)}
        await before.controller.close()
        await after.controller.close()

    asyncio.run(scenario())


def test_a_leader_whose_home_lies_elsewhere_adopts_replicas_whose_nodes_build_their_envs(
    db: Database, envs: Path, tmp_path: Path
) -> None:
    """On the ray backend specs name no path of the server, so another server (another
    ``BERTH_HOME``) gives the replicas it takes over the same ids; with the server's paths in
    them (the local backend), it would replace them."""

    async def scenario() -> None:
        register(db)
        before = World(db, envs, envs_on_nodes=True)
        replica = await serving(before)
        running = before.backend.replicas()
        assert running[0].spec.python == "node:berth" and running[0].spec.pythonpath is None

        after = World(db, tmp_path / "envs", MemoryBackend(running), envs_on_nodes=True)
        decided = await after.reconcile()
        assert decided.start == () and decided.stop == ()
        assert after.routed("ep") == [replica]
        local = World(db, tmp_path / "envs", MemoryBackend(running))
        [(elsewhere, _spec)] = (await local.reconcile()).start
        assert elsewhere != replica
        for world in (before, after, local):
            await world.controller.close()

    asyncio.run(scenario())


def test_on_nodes_that_build_environments_a_replica_starts_at_once_naming_its_own(
    db: Database, tmp_path: Path
) -> None:
    """The server builds no environment its replicas' nodes build: the first pass starts the
    replica, its spec naming the environment and carrying its spec for the node."""

    async def scenario() -> None:
        spec = {"python": "3.11", "requirements": ["tinypkg==0.1"], "constraints": []}
        register(db, environment={"hash": "f00d", "spec": spec})
        world = World(db, tmp_path, envs_on_nodes=True)
        create(world.db, "ep", document(1, 1))
        await world.reconcile()
        [started] = world.backend.replicas()
        assert started.spec.python == "node:f00d" and started.spec.pythonpath is None
        assert started.spec.environment is not None
        assert json.loads(started.spec.environment) == spec
        await world.controller.close()

    asyncio.run(scenario())


def test_restarted_controller_finishes_a_rollout_it_finds_ready(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db, versions=2)
        before = World(db, envs)
        old = await serving(before)
        update(db, "ep", document(2, 2))
        await before.reconcile()
        new = before.backend.of(2)
        before.backend.ready(new)  # became ready while no controller ran
        running = before.backend.replicas()

        after = World(db, envs, MemoryBackend(running))
        await after.reconcile()
        assert after.backend.started == []
        assert after.endpoint("ep").config_version == 2
        assert after.routed("ep") == [new]
        await after.reconcile()
        await settle(lambda: old not in after.backend.statuses)
        await before.controller.close()
        await after.controller.close()

    asyncio.run(scenario())


def test_external_model_routes_carry_revealed_credentials_and_gateway_settings(
    db: Database, envs: Path
) -> None:
    async def scenario() -> None:
        secrets = {"{{secrets/team/openai}}": "sk-revealed"}
        world = World(db, envs, reveal=secrets.get)
        external = {
            "name": "gpt-4o",
            "provider": "openai",
            "task": "llm/v1/chat",
            "openai_config": {"openai_api_key": "{{secrets/team/openai}}"},
        }
        pending = EndpointConfigDoc.from_json(
            {
                "config_version": 1,
                "served_entities": [{"name": "chat", "external_model": external}],
                "traffic_config": {
                    "routes": [{"served_entity_name": "chat", "traffic_percentage": 100}]
                },
            }
        )
        gateway = {
            "inference_table_config": {"enabled": True, "sampling_fraction": 0.25},
            "usage_tracking_config": {"enabled": True},
        }
        create(db, "chat", pending, ai_gateway=gateway)

        await world.reconcile()
        route = world.bus.current.endpoints["chat"]
        assert route.config_version == 1  # nothing to start: it serves at once
        (entity,) = route.entities
        assert entity.external is not None
        assert entity.external["openai_config"] == {"openai_api_key_plaintext": "sk-revealed"}
        assert (route.policy.capture, route.policy.track_usage, route.policy.fallback) == (
            0.25,
            True,
            False,
        )
        assert world.backend.started == []
        await world.controller.close()

    asyncio.run(scenario())
