"""A pass's stages are timed, and a failing one costs only what needs its result."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import text

from berth.controller.autoscaler import Policy
from berth.controller.load_board import LoadBoard
from berth.controller.retirements import Retirements
from berth.controller.stages import Stages
from berth.core.dataplane import EndpointRoute, EntityRoute, ReplicaRoute, Snapshot
from berth.core.endpoint_config import (
    EndpointConfigDoc,
    ExternalModel,
    ServedEntity,
    TrafficRoute,
)
from berth.core.load import EntityKey, EntityLoad
from berth.core.states import ConfigUpdate
from berth.metrics import PASS_STAGES, Metrics
from berth.store.db import Database
from berth.store.tables import EndpointRow
from tests.unit.controller.support import (
    MemoryBackend,
    World,
    create,
    delete,
    document,
    document_json,
    register,
    serving,
    settle,
    update,
)


def test_every_stage_of_a_pass_is_timed_on_metrics(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db)
        world = World(db, envs)
        create(db, "ep", document(1, 1))
        await world.reconcile()

        exposed = world.metrics.render().decode()
        for stage in PASS_STAGES:
            assert f'berth_controller_stage_seconds_count{{stage="{stage}"}} 1.0' in exposed
            assert f'berth_controller_stage_failures_total{{stage="{stage}"}} 0.0' in exposed
        await world.controller.close()

    asyncio.run(scenario())


def test_a_replica_that_cannot_start_costs_that_replica_alone(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db)
        world = World(db, envs)
        world.backend.refused = {"a"}
        create(db, "a", document(1, 1))
        create(db, "b", document(1, 1))
        await world.reconcile()
        assert [world.backend.statuses[r].spec.endpoint for r in world.backend.started] == ["b"]
        assert world.failures("execute") == 1

        world.backend.refused = set()
        await world.reconcile()
        assert world.backend.on("a") in world.backend.started
        await world.controller.close()

    asyncio.run(scenario())


def test_failed_recording_does_not_skip_retiring(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db)
        world = World(db, envs)
        gone = await serving(world, "gone")
        create(db, "ep", document(1, 1))
        await world.reconcile()
        world.backend.ready(world.backend.on("ep"))
        delete(db, "gone")
        with db.engine.begin() as conn:  # the store refuses every endpoint write
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE UPDATE ON endpoints "
                    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
                )
            )

        await world.reconcile()
        assert world.failures("record") == 1
        assert world.endpoint("ep").config_update is ConfigUpdate.IN_PROGRESS
        await settle(lambda: gone not in world.backend.statuses)
        assert world.drained == [gone]

        with db.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse"))
        await world.reconcile()
        assert world.endpoint("ep").config_update is ConfigUpdate.NOT_UPDATING
        await world.controller.close()

    asyncio.run(scenario())


def test_failed_publishing_skips_recording_but_not_retiring(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db)
        world = World(db, envs)
        gone = await serving(world, "gone")
        create(db, "ep", document(1, 1))
        await world.reconcile()
        world.backend.ready(world.backend.on("ep"))
        delete(db, "gone")
        broken = True

        def listener(_snapshot: Snapshot) -> None:
            if broken:
                raise RuntimeError("the data-plane channel is closed")

        world.bus.subscribe(listener)
        await world.reconcile()
        assert world.failures("publish") == 1
        assert world.endpoint("ep").config_update is ConfigUpdate.IN_PROGRESS
        await settle(lambda: gone not in world.backend.statuses)

        broken = False
        await world.reconcile()
        assert world.endpoint("ep").config_update is ConfigUpdate.NOT_UPDATING
        await world.controller.close()

    asyncio.run(scenario())


def test_a_replica_still_routed_is_not_retired() -> None:
    async def scenario() -> None:
        backend = MemoryBackend()
        retirements = Retirements(backend, _never_drains, Stages(Metrics()))
        replica = ReplicaRoute("ep.m.abc.0", "unix:/r.sock", 8)
        routes = EndpointRoute("ep", "id", 1, (EntityRoute("m", 100, (replica,)),))
        retirements.retire([replica.replica_id], Snapshot(2, {"ep": routes}))
        assert replica.replica_id not in retirements
        retirements.retire([replica.replica_id], Snapshot(3, {}))
        assert replica.replica_id in retirements
        await retirements.close()

    asyncio.run(scenario())


async def _never_drains(_replica_id: str) -> None:
    await asyncio.Event().wait()


def test_failed_retirement_is_retried_on_a_later_pass(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db)
        world = World(db, envs)
        replica = await serving(world, "ep")
        delete(db, "ep")
        world.undrainable = {replica}
        await world.reconcile()
        await settle(lambda: world.failures("retire") == 1)
        assert replica in world.backend.statuses

        world.undrainable = set()
        await world.reconcile()
        await settle(lambda: replica not in world.backend.statuses)
        await world.controller.close()

    asyncio.run(scenario())


def test_failed_autoscaler_keeps_the_counts_the_last_pass_wanted(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db)
        broken = False

        def demand() -> dict[EntityKey, EntityLoad]:
            if broken:
                raise RuntimeError("gateway load unreadable")
            return {}

        world = World(db, envs, load=LoadBoard(demand), policy=Policy(scale_to_zero_idle_s=0))
        create(db, "ep", document(1, 1, scale_to_zero_enabled=True))
        await world.reconcile()
        replica = world.backend.on("ep")
        await world.reconcile()  # idle: scaled to zero, and the config promoted
        await world.reconcile()  # kept warm for the next request
        await settle(lambda: replica not in world.backend.statuses)
        assert [s.endpoint for s in world.backend.warm] == ["ep"]

        broken = True
        decided = await world.reconcile()
        assert world.failures("autoscale") == 1
        assert decided.start == ()  # not the configured one replica: zero, as wanted before
        await world.controller.close()

    asyncio.run(scenario())


def test_an_endpoint_whose_target_fails_is_held_as_it_is(db: Database, envs: Path) -> None:
    def vault_down(value: str) -> str | None:
        raise RuntimeError("the vault does not answer")

    async def scenario() -> None:
        register(db)
        world = World(db, envs, reveal=vault_down)
        replica = await serving(world, "held")
        external = ExternalModel("gpt-4o", "openai", "llm/v1/chat", {"openai_config": {}})
        chat = ServedEntity("chat", external_model=external)
        update(db, "held", EndpointConfigDoc(2, (chat,), (TrafficRoute("chat", 100),)))
        create(db, "other", document(1, 1))

        decided = await world.reconcile()
        assert world.failures("target") == 1
        assert decided.stop == ()
        assert world.routed("held") == [replica]
        assert world.endpoint("held").config_update is ConfigUpdate.IN_PROGRESS
        assert world.backend.on("other") in world.backend.started
        await world.controller.close()

    asyncio.run(scenario())


def test_an_endpoint_whose_stored_config_does_not_read_is_held_as_it_is(
    db: Database, envs: Path
) -> None:
    async def scenario() -> None:
        register(db)
        world = World(db, envs)
        replica = await serving(world, "held")
        broken = document_json(2, 1)
        del broken["traffic_config"]["routes"][0]["traffic_percentage"]
        with db.transaction() as session:
            session.execute(
                sqlalchemy.update(EndpointRow)
                .where(EndpointRow.name == "held")
                .values(pending_config=broken, config_update=ConfigUpdate.IN_PROGRESS.value)
            )
        create(db, "other", document(1, 1))

        decided = await world.reconcile()
        assert world.failures("read") == 1
        assert decided.stop == ()
        assert world.routed("held") == [replica]
        assert world.backend.on("other") in world.backend.started
        await world.controller.close()

    asyncio.run(scenario())


def test_an_endpoint_whose_model_version_is_unreadable_is_held(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db)
        world = World(db, envs)
        replica = await serving(world, "held")
        update(db, "held", document(2, 9))  # no version 9: the read of it fails
        create(db, "other", document(1, 1))

        decided = await world.reconcile()
        assert world.failures("read") == 1
        assert world.failures("target") == 0
        assert decided.stop == ()
        assert world.routed("held") == [replica]
        assert world.backend.on("other") in world.backend.started
        await world.controller.close()

    asyncio.run(scenario())


def test_a_failed_read_ends_the_pass_and_the_next_one_recovers(db: Database, envs: Path) -> None:
    async def scenario() -> None:
        register(db)
        world = World(db, envs)
        replica = await serving(world, "ep")
        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE endpoints RENAME TO endpoints_away"))
        decided = await world.reconcile()
        assert (decided.start, decided.stop, decided.transitions) == ((), (), ())
        assert world.failures("read") == 1
        assert world.routed("ep") == [replica]

        with db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE endpoints_away RENAME TO endpoints"))
        decided = await world.reconcile()
        assert world.routed("ep") == [replica]
        await world.controller.close()

    asyncio.run(scenario())


def test_outcomes_are_recorded_once_every_gateway_holds_the_routes(
    db: Database, envs: Path
) -> None:
    async def scenario() -> None:
        register(db)
        gates: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        held: list[int] = []

        async def followers(version: int) -> None:
            await gates[version].wait()
            held.append(version)

        world = World(db, envs, followers=followers)
        create(db, "ep", document(1, 1))
        await world.reconcile()
        first = world.bus.current.version
        assert world.events("ep") == []  # its entity's state waits for the gateways
        gates[first].set()
        await settle(lambda: first in held)
        replica = world.backend.on("ep")
        world.backend.ready(replica)

        await world.reconcile()  # the pass does not wait for the gateways
        routes = world.bus.current.version
        assert routes > first
        assert world.routed("ep") == [replica]
        assert world.endpoint("ep").config_update is ConfigUpdate.IN_PROGRESS
        await world.reconcile()
        assert world.endpoint("ep").config_update is ConfigUpdate.IN_PROGRESS

        gates[routes].set()
        await settle(lambda: routes in held)
        await world.reconcile()
        assert world.endpoint("ep").config_update is ConfigUpdate.NOT_UPDATING
        assert held == [first, routes]  # one wait per version, however many passes asked
        await world.controller.close()

    asyncio.run(scenario())


def test_the_loop_passes_on_its_own_and_wakes_for_waiting_requests(
    db: Database, envs: Path
) -> None:
    async def scenario() -> None:
        register(db)
        world = World(db, envs, tick_s=3600)
        published: asyncio.Queue[Snapshot] = asyncio.Queue()
        world.bus.subscribe(published.put_nowait)
        create(db, "ep", document(1, 1))
        world.controller.start()
        await asyncio.wait_for(published.get(), timeout=30)
        replica = world.backend.on("ep")
        world.backend.ready(replica)

        world.controller.report_load("gateway-2", {("ep", "sum-entity"): EntityLoad(waiting=1)})
        routed = await asyncio.wait_for(published.get(), timeout=30)
        assert [r.replica_id for r in routed.endpoints["ep"].entities[0].replicas] == [replica]
        assert world.controller.logs("ep", "sum-entity") == (
            f"==> replica {replica} (READY) <==\n{replica} loaded its model\n"
        )
        assert world.controller.logs("ep", "nobody") is None
        await world.controller.close()
        assert world.backend.closed

    asyncio.run(scenario())


def test_stage_guard_lets_cancellation_through_and_times_what_it_guards() -> None:
    metrics = Metrics()
    readings = iter([10.0, 10.25])
    stages = Stages(metrics, now=lambda: next(readings))
    with pytest.raises(asyncio.CancelledError), stages.run("execute"):
        raise asyncio.CancelledError
    assert metrics.registry.get_sample_value(
        "berth_controller_stage_seconds_sum", {"stage": "execute"}
    ) == pytest.approx(0.25)
    assert (
        metrics.registry.get_sample_value(
            "berth_controller_stage_failures_total", {"stage": "execute"}
        )
        == 0
    )
