"""Replica counts per minute for the metrics history: written as each minute starts and when a
count changes, never on every pass; kept a week."""

from __future__ import annotations

import asyncio
from pathlib import Path

from berth.controller.replica_history import RETAIN_MS, ReplicaHistory
from berth.controller.sizing import ReplicaCount
from berth.core.usage import MINUTE_MS
from berth.store import replica_history
from berth.store.db import Database
from berth.store.replica_history import ReplicaSample
from berth.store.tables import ReplicaHistoryRow
from tests.unit.controller.support import World, create, document, register, update

START = 1_700_000_040_000


def stored(db: Database, endpoint: str) -> list[tuple[int, str, int, int]]:
    with db.transaction() as session:
        found = replica_history.samples(session, endpoint, 0, 2**53)
    return [(s.minute, s.served_entity, s.ready, s.desired) for s in found]


def erase(db: Database) -> None:
    with db.transaction() as session:
        session.query(ReplicaHistoryRow).delete()


def test_each_pass_keeps_the_minutes_last_count_writing_only_what_changed(
    db: Database, envs: Path
) -> None:
    async def scenario() -> None:
        register(db, versions=2)
        world = World(db, envs)
        world.clock.now = START
        create(db, "ep", document(1, 1))
        await world.reconcile()
        endpoint_id = world.endpoint("ep").id
        assert stored(db, endpoint_id) == [(START, "sum-entity", 0, 1)]

        world.backend.ready(world.backend.on("ep"))
        await world.reconcile()
        assert stored(db, endpoint_id) == [(START, "sum-entity", 1, 1)]

        erase(db)  # what an unchanged pass would write, it writes again: nothing
        await world.reconcile()
        assert stored(db, endpoint_id) == []

        world.clock.now = START + MINUTE_MS
        await world.reconcile()
        assert stored(db, endpoint_id) == [(START + MINUTE_MS, "sum-entity", 1, 1)]

        # A rollout: the pending config's replica starts beside the current one, same entity.
        update(db, "ep", document(2, 2))
        await world.reconcile()
        world.backend.ready(world.backend.of(2))
        await world.reconcile()
        assert (START + MINUTE_MS, "sum-entity", 2, 1) in stored(db, endpoint_id)
        await world.controller.close()

    asyncio.run(scenario())


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def now_ms(self) -> int:
        return self.now


def test_samples_older_than_a_week_go_as_a_minute_starts(db: Database) -> None:
    async def scenario() -> None:
        with db.transaction() as session:
            old = ReplicaSample(START - RETAIN_MS - MINUTE_MS, "ep-id", "a", 3, 3)
            kept = ReplicaSample(START - RETAIN_MS, "ep-id", "a", 2, 2)
            replica_history.record(session, [old, kept])
        history = ReplicaHistory(db, Clock(START))
        await history.record({("ep-id", "a"): ReplicaCount(1, 1)})
        assert stored(db, "ep-id") == [(START - RETAIN_MS, "a", 2, 2), (START, "a", 1, 1)]

    asyncio.run(scenario())
