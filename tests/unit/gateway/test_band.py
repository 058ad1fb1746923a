"""Provisioned bands: reservations against a token bucket, settled on usage, a FIFO queue
bounded in time, and the band following the routed replicas. Time stands still here (an
injected clock), so the bucket refills only when a test moves it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from berth.core.dataplane import (
    EndpointRoute,
    EntityRoute,
    ProvisionedBand,
    ReplicaProtocol,
    ReplicaRoute,
    Snapshot,
)
from berth.core.errors import RateLimited
from berth.gateway.band import Bands, Reservation

BAND = ProvisionedBand(chunk_tps=10, min_tps=10, max_tps=30)


def entity(replicas: int = 1, band: ProvisionedBand | None = BAND) -> EntityRoute:
    routed = tuple(ReplicaRoute(f"r{i}", f"a{i}", 4) for i in range(replicas))
    return EntityRoute("llm-1", 100, routed, protocol=ReplicaProtocol.OPENAI, provisioned=band)


def snapshot(*entities: EntityRoute) -> Snapshot:
    return Snapshot(2, {"ep": EndpointRoute("ep", "ep-id", 1, entities)})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(scenario: Coroutine[Any, Any, None]) -> None:
    """A scenario that waits for a wake-up that never comes fails instead of hanging."""
    asyncio.run(asyncio.wait_for(scenario, 5.0))


async def turn() -> None:
    """Let the woken waiters run."""
    for _ in range(3):
        await asyncio.sleep(0)


def reserve(bands: Bands, tokens: int, route: EntityRoute | None = None) -> asyncio.Task[Any]:
    return asyncio.ensure_future(bands.reserve("ep", route or entity(), tokens))


def test_within_the_band_requests_go_at_once_and_the_rest_wait_in_order() -> None:
    async def scenario() -> None:
        bands = Bands(max_wait_s=5.0, clock=Clock())
        first = await bands.reserve("ep", entity(), 4)
        await bands.reserve("ep", entity(), 4)
        large, small = reserve(bands, 5), reserve(bands, 1)
        await turn()
        assert not large.done() and not small.done(), "1 would fit, but not before 5"
        assert bands.waiting("ep", "llm-1") == 2
        assert bands.load()[("ep", "llm-1")] == (0.0, 0.6)
        bands.settle(first, 1)  # 3 of the 4 reserved come back: 5 free
        await turn()
        assert large.done() and not small.done()
        bands.settle(await large, 0)
        await turn()
        assert small.done() and bands.waiting("ep", "llm-1") == 0
        assert bands.load()[("ep", "llm-1")] == (0.1, 0.0), "1 token used of a 10 tokens/s chunk"

    run(scenario())


def test_the_bucket_refills_at_the_band_and_holds_one_second_of_it() -> None:
    async def scenario() -> None:
        clock = Clock()
        bands = Bands(max_wait_s=5.0, clock=clock)
        await bands.reserve("ep", entity(), 10)
        clock.now += 0.5
        waiting = reserve(bands, 6)
        await turn()
        assert not waiting.done(), "5 tokens back after 0.5 s"
        clock.now += 100.0
        second = reserve(bands, 4)  # a new request pumps the queue: the head goes first
        await turn()
        assert waiting.done() and second.done()
        third = reserve(bands, 1)
        await turn()
        assert not third.done(), "100 s refilled the bucket's 10 tokens, no more"
        third.cancel()

    run(scenario())


def test_past_the_queue_bound_a_request_is_refused_with_retry_after() -> None:
    async def scenario() -> None:
        bands = Bands(max_wait_s=1.0, clock=Clock())
        await bands.reserve("ep", entity(), 10)
        queued = reserve(bands, 8)  # 0.8 s of refill ahead of it
        await turn()
        with pytest.raises(RateLimited) as refused:
            await bands.reserve("ep", entity(), 3)  # 1.1 s
        assert refused.value.retry_after == 1
        assert "provisioned throughput of 10 tokens/s" in refused.value.message
        assert not queued.done()
        queued.cancel()

    run(scenario())


def test_an_estimate_over_the_bucket_goes_alone_once_the_bucket_is_full() -> None:
    async def scenario() -> None:
        clock = Clock()
        bands = Bands(max_wait_s=4.5, clock=clock)
        held = await bands.reserve("ep", entity(), 50)  # 10 held: it goes, 40 in debt
        with pytest.raises(RateLimited) as refused:
            await bands.reserve("ep", entity(), 20)  # 4 s of debt, then 1 s for 10 of it
        assert refused.value.retry_after == 4
        bands.settle(held, 5)  # 45 of its 50 come back: the debt is gone, 5 are free
        assert isinstance(await bands.reserve("ep", entity(), 5), Reservation)

    run(scenario())


def test_a_waiter_that_gives_up_leaves_the_queue_to_the_next() -> None:
    async def scenario() -> None:
        bands = Bands(max_wait_s=5.0, clock=Clock())
        held = await bands.reserve("ep", entity(), 10)
        head, next_ = reserve(bands, 9), reserve(bands, 2)
        await turn()
        head.cancel()
        await turn()
        assert bands.waiting("ep", "llm-1") == 1
        bands.settle(held, 7)
        await turn()
        assert next_.done() and not next_.cancelled()

    run(scenario())


def test_the_band_follows_the_routed_replicas_between_its_bounds() -> None:
    async def scenario() -> None:
        clock = Clock()
        bands = Bands(max_wait_s=0.1, clock=clock)

        async def rate() -> str:
            """A full bucket lent whole, so that the next token is refused, naming the band."""
            clock.now += 100.0
            held = await bands.reserve("ep", entity(), 1000)
            try:
                with pytest.raises(RateLimited) as refused:
                    await bands.reserve("ep", entity(), 1)
            finally:
                bands.settle(held, 0)
            return refused.value.message.split("throughput of ")[1].split(" ")[0]

        floor = ProvisionedBand(chunk_tps=10, min_tps=20, max_tps=30)
        await bands.reserve("ep", entity(0, floor), 1)  # made at the entity's first request
        bands.routes_changed(snapshot(entity(0, floor)))
        assert await rate() == "20", "no replica routed yet: the minimum"
        bands.routes_changed(snapshot(entity(5, floor)))
        assert await rate() == "30", "five replicas' worth, held to the maximum"

    run(scenario())


def test_an_entity_gone_from_the_routes_lets_its_queue_through() -> None:
    async def scenario() -> None:
        bands = Bands(max_wait_s=5.0, clock=Clock())
        await bands.reserve("ep", entity(), 10)
        waiting = [reserve(bands, 5), reserve(bands, 5)]
        await turn()
        bands.routes_changed(snapshot(entity(band=None)))  # no longer provisioned
        await turn()
        assert all(w.done() for w in waiting)
        assert bands.load() == {} and bands.waiting("ep", "llm-1") == 0

    run(scenario())
