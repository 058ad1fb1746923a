"""An open LLM's band, reported queued by a gateway, scales its entity through a real
controller pass after pass (store, load board, autoscaler, planner) up to the maximum, and
back to the minimum when the queue is gone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from berth.controller.autoscaler import Policy
from berth.controller.load_board import LoadBoard
from berth.core.load import EntityLoad
from berth.store.db import Database
from tests.unit.controller.support import World, create, document, register

QUICK = Policy(upscale_delay_s=0.0, downscale_delay_s=0.0, smoothing_s=0.01)


async def one_pass(world: World) -> None:
    """A controller pass, as its loop runs them; the replicas it starts become ready."""
    await world.reconcile()
    for replica_id in list(world.backend.statuses):
        world.backend.ready(replica_id)
    await asyncio.sleep(0.05)


async def passes_until(world: World, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10.0
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await one_pass(world)


def test_a_queued_band_scales_its_entity_to_the_maximum_and_back_to_the_minimum(
    db: Database, envs: Path
) -> None:
    async def scenario() -> None:
        register(db)
        board = LoadBoard()
        world = World(db, envs, load=board, policy=QUICK)
        bounds = {"min_provisioned_concurrency": 4, "max_provisioned_concurrency": 12}
        create(db, "ep", document(1, 1, workload_size=None, **bounds))  # 1 to 3 replicas
        running = lambda: len(world.backend.statuses)  # noqa: E731
        await passes_until(world, lambda: running() == 1, "the first replica")

        queued = {("ep", "sum-entity"): EntityLoad(band_queued_s=2.0)}
        board.post("gateway", queued)
        await passes_until(world, lambda: running() == 3, "three replicas")
        for _ in range(5):
            await one_pass(world)
            assert running() == 3, "never past the maximum"

        board.post("gateway", {})
        await passes_until(world, lambda: running() == 1, "back to one replica")
        for _ in range(5):
            await one_pass(world)
            assert running() == 1, "never below the minimum"
        await world.controller.close()

    asyncio.run(scenario())
