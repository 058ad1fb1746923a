"""A controller whose server lost the lease starts nothing and writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from berth.core.errors import LeaseLost
from berth.core.states import ConfigUpdate
from berth.store import leases
from berth.store.db import Database
from berth.store.fencing import Fenced, Term
from tests.unit.controller.support import World, create, document, register

TTL = 6_000
LATER = 4_000_000_000_000
"""A time past any lease the tests' clock gives."""


def take(db: Database, holder: str, now: int) -> Term:
    with db.transaction() as session:
        token = leases.acquire(session, leases.CONTROLLER, holder, now, TTL)
    assert token is not None
    return Term(holder, token)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait for ``condition`` while the loop's reads run in their threads."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


class TakenOverAfterRead(Fenced):
    """Server ``b`` acquires the lease once this server's pass has read the store (``a``
    paused there past its lease)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, leases.CONTROLLER)
        self.db = db
        self.transactions = 0

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with super().transaction() as session:
            yield session
        self.transactions += 1
        if self.transactions == 1:
            take(self.db, "b", LATER)


def test_a_leader_that_lost_the_lease_between_read_and_act_starts_nothing(
    db: Database, envs: Path
) -> None:
    async def scenario() -> None:
        register(db)
        store = TakenOverAfterRead(db)
        world = World(db, envs, store=store)
        store.term = take(db, "a", world.clock.now_ms())
        create(db, "ep", document(1, 1))
        with pytest.raises(LeaseLost, match="held by 'b'"):
            await world.reconcile()
        assert world.backend.started == []
        assert world.endpoint("ep").config_update is ConfigUpdate.IN_PROGRESS
        assert world.events("ep") == []
        await world.controller.close()

    asyncio.run(scenario())


def test_a_stale_leaders_loop_stops_without_acting(
    db: Database, envs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        register(db)
        store = Fenced(db, leases.CONTROLLER)
        world = World(db, envs, store=store, tick_s=0.01)
        store.term = take(db, "a", world.clock.now_ms())
        take(db, "b", LATER)
        create(db, "ep", document(1, 1))
        world.controller.start()
        await until(lambda: "the controller stops" in caplog.text)
        assert world.backend.started == []
        assert world.events("ep") == []
        await world.controller.close()

    asyncio.run(scenario())
