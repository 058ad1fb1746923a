"""Snapshots cross process boundaries as JSON and come back equal."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from berth.core.dataplane import (
    ContainerRoute,
    EndpointRoute,
    EntityRoute,
    ProvisionedBand,
    ReplicaProtocol,
    ReplicaRoute,
    RoutePolicy,
    Snapshot,
    SnapshotBus,
    replica_protocol,
)
from berth.core.principal import Principal, PrincipalKind

SNAPSHOT = Snapshot(
    version=7,
    endpoints={
        "ep": EndpointRoute(
            "ep",
            "abc",
            3,
            (
                EntityRoute("a", 70, (ReplicaRoute("r0", "127.0.0.1:9000", 4),)),
                EntityRoute("b", 30, ()),
                EntityRoute(
                    "llm",
                    0,
                    (ReplicaRoute("r1", "unix:/box/r1.sock", 4),),
                    protocol=ReplicaProtocol.OPENAI,
                    provisioned=ProvisionedBand(chunk_tps=120, min_tps=0, max_tps=360),
                ),
                EntityRoute(
                    "own-server",
                    0,
                    (ReplicaRoute("r2", "unix:/box/r2.sock", 4),),
                    protocol=ReplicaProtocol.CONTAINER,
                    container=ContainerRoute("/v1/models/m:predict"),
                ),
                EntityRoute(
                    "own-llm",
                    0,
                    (ReplicaRoute("r3", "unix:/box/r3.sock", 4),),
                    protocol=ReplicaProtocol.OPENAI,
                    container=ContainerRoute("/v1/chat/completions", raw_invoke=True),
                ),
            ),
        )
    },
    tokens={"f00": Principal("alice", PrincipalKind.USER, frozenset({"admins", "ml"}))},
)


POLICY = RoutePolicy(
    fallback=True,
    queriers=frozenset({"u:alice", "g:ml"}),
    track_usage=True,
    rate_limits=({"calls": 5, "renewal_period": "minute", "key": "user"},),
    capture=0.25,
    access_log=True,
    predict_log=True,
    guardrails={"input": {"invalid_keywords": ["x"]}},
)


def test_snapshot_round_trips_through_json() -> None:
    assert Snapshot.from_json(SNAPSHOT.to_json()) == SNAPSHOT


def test_a_route_policy_round_trips_and_keeps_its_flat_wire_form() -> None:
    assert RoutePolicy.from_json(POLICY.to_json()) == POLICY
    assert RoutePolicy.from_json(RoutePolicy().to_json()) == RoutePolicy()
    route = replace(SNAPSHOT.endpoints["ep"], policy=POLICY)
    snapshot = replace(SNAPSHOT, endpoints={"ep": route})
    [wire] = snapshot.to_json()["endpoints"]
    assert (wire["queriers"], wire["fallback"], wire["capture"]) == (
        ["g:ml", "u:alice"],
        True,
        0.25,
    )
    assert Snapshot.from_json(snapshot.to_json()) == snapshot


def test_bus_long_poll_returns_as_soon_as_a_newer_snapshot_is_published() -> None:
    async def scenario() -> None:
        bus = SnapshotBus()
        waiting = asyncio.ensure_future(bus.newer_than(0, timeout=30))
        await asyncio.sleep(0)
        assert not waiting.done()
        bus.publish(SNAPSHOT)
        assert await asyncio.wait_for(waiting, 5) == SNAPSHOT
        assert await bus.newer_than(0, timeout=30) == SNAPSHOT  # already newer: at once
        assert (await bus.newer_than(7, timeout=0.01)).version == 7  # timed out: current

    asyncio.run(scenario())


def test_a_provisioned_band_stays_between_its_bounds() -> None:
    band = ProvisionedBand(chunk_tps=100, min_tps=100, max_tps=300)
    assert [band.current(n) for n in range(5)] == [100, 100, 200, 300, 300]


def test_a_container_that_declares_an_llm_task_speaks_the_openai_routes() -> None:
    assert replica_protocol("container") is ReplicaProtocol.CONTAINER
    assert replica_protocol("container", "llm/v1/chat") is ReplicaProtocol.OPENAI
    assert replica_protocol("gguf", "llm/v1/chat") is ReplicaProtocol.OPENAI
    assert replica_protocol("sklearn") is ReplicaProtocol.RUNTIME
