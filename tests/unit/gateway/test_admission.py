"""Admission: slots per replica, a bounded FIFO when full, and replicas that dropped requests."""

from __future__ import annotations

import asyncio
import random

import pytest

from berth.core.dataplane import EndpointRoute, EntityRoute, ReplicaRoute
from berth.core.errors import Unavailable
from berth.core.load import EntityLoad
from berth.gateway.admission import Admission

ROUTE = EndpointRoute(
    "ep", "id", 1, (EntityRoute("m", 100, (ReplicaRoute("r0", "127.0.0.1:1", 2),)),)
)


def test_requests_beyond_capacity_wait_in_order_and_overflow_is_refused() -> None:
    async def scenario() -> None:
        admission = Admission(max_queue=2, rng=random.Random(0))
        held = [await admission.acquire(ROUTE), await admission.acquire(ROUTE)]
        first = asyncio.ensure_future(admission.acquire(ROUTE))
        second = asyncio.ensure_future(admission.acquire(ROUTE))
        await asyncio.sleep(0)
        assert admission.queue_depth("ep") == 2
        with pytest.raises(Unavailable) as refused:
            await admission.acquire(ROUTE)
        assert refused.value.retry_after == 1
        admission.release(held[0])
        await first
        assert not second.done()
        admission.release(held[1])
        await second
        assert admission.outstanding["r0"] == 2

    asyncio.run(scenario())


def test_a_waiter_that_times_out_leaves_the_queue() -> None:
    async def scenario() -> None:
        admission = Admission(max_queue=4)
        for _ in range(2):
            await admission.acquire(ROUTE)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await admission.acquire(ROUTE)
        assert admission.queue_depth("ep") == 0

    asyncio.run(scenario())


def test_endpoint_without_ready_replicas_is_unavailable() -> None:
    empty = EndpointRoute("ep", "id", 1, (EntityRoute("m", 100, ()),))

    async def scenario() -> None:
        with pytest.raises(Unavailable):
            await Admission(max_queue=4).acquire(empty)

    asyncio.run(scenario())


def test_a_replica_marked_down_is_avoided() -> None:
    two = EndpointRoute(
        "ep",
        "id",
        1,
        (EntityRoute("m", 100, (ReplicaRoute("a", "x:1", 4), ReplicaRoute("b", "x:2", 4))),),
    )

    async def scenario() -> None:
        admission = Admission(max_queue=4, rng=random.Random(1))
        admission.mark_down("a")
        picks = {(await admission.acquire(two)).replica.replica_id for _ in range(4)}
        assert picks == {"b"}

    asyncio.run(scenario())


COLD = EndpointRoute("ep", "id", 1, (EntityRoute("m", 100, (), cold=True),))
WOKEN = EndpointRoute(
    "ep", "id", 2, (EntityRoute("m", 100, (ReplicaRoute("r0", "127.0.0.1:1", 2),)),)
)


def test_a_request_for_an_entity_scaled_to_zero_waits_for_its_replica() -> None:
    async def scenario() -> None:
        routes = {"ep": COLD}
        demands: list[tuple[str, str]] = []
        admission = Admission(
            max_queue=4,
            routes=routes.get,
            on_demand=lambda ep, en: demands.append((ep, en)),
        )
        waiting = asyncio.ensure_future(admission.acquire(COLD))
        await asyncio.sleep(0)
        assert demands == [("ep", "m")] and not waiting.done()
        assert admission.load()[("ep", "m")] == EntityLoad(0, 1, 0.0, 0)
        assert admission.queue_depth("ep") == 0, "cold waiters are not the capacity queue"
        routes["ep"] = WOKEN
        admission.wake_all()
        slot = await waiting
        assert slot.replica.replica_id == "r0"
        assert admission.load()[("ep", "m")].in_flight == 1
        admission.release(slot)
        load = admission.load()[("ep", "m")]
        assert (load.in_flight, load.waiting, load.served) == (0, 0, 1) and load.busy_s > 0

    asyncio.run(scenario())


def test_a_cold_start_past_its_timeout_is_a_503_with_retry_after() -> None:
    async def scenario() -> None:
        admission = Admission(max_queue=4, routes={"ep": COLD}.get, cold_start_s=0.05)
        with pytest.raises(Unavailable) as refused:
            await admission.acquire(COLD)
        assert "scaled to zero" in refused.value.message
        assert refused.value.retry_after is not None and refused.value.retry_after >= 1
        assert admission.load()[("ep", "m")].waiting == 0

    asyncio.run(scenario())


def test_an_entity_chosen_before_the_slot_is_the_one_waited_for() -> None:
    two = EndpointRoute(
        "ep",
        "id",
        1,
        (
            EntityRoute("a", 99, (ReplicaRoute("ra", "127.0.0.1:1", 1),)),
            EntityRoute("b", 1, (ReplicaRoute("rb", "127.0.0.1:2", 1),)),
        ),
    )

    async def scenario() -> None:
        admission = Admission(max_queue=4, rng=random.Random(0))
        held = await admission.acquire(two, "b")
        assert held.replica.replica_id == "rb"
        waiting = asyncio.ensure_future(admission.acquire(two, "b"))
        await asyncio.sleep(0)
        assert not waiting.done(), "b's one slot is taken; a's is not its to take"
        assert admission.entity_load("ep", "b").waiting == 1
        admission.release(held)
        assert (await waiting).entity.name == "b"
        gone = await admission.acquire(two, "c")  # no longer routed: by traffic (a's 99 %)
        assert gone.entity.name == "a"

    asyncio.run(scenario())


def test_a_request_whose_only_replica_is_marked_down_tries_it_again_when_the_mark_ends() -> None:
    async def scenario() -> None:
        admission = Admission(max_queue=4, routes={"ep": ROUTE}.get, cold_start_s=10)
        admission.mark_down("r0", seconds=0.05)
        started = asyncio.get_running_loop().time()
        slot = await admission.acquire(ROUTE)  # no new routes come: the mark's end wakes it
        assert slot.replica.replica_id == "r0"
        assert 0.04 <= asyncio.get_running_loop().time() - started < 5

    asyncio.run(scenario())
