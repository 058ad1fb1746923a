"""The controller lease on a real PostgreSQL: servers racing for it never both win, and a
fenced transaction holds off an acquisition until it ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from berth.core.errors import LeaseLost
from berth.store import leases, snapshots
from berth.store.db import Database
from berth.store.fencing import Fenced, Term
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.integration

TTL = 6_000


@pytest.fixture
def url(postgres: PostgresCluster) -> str:
    url = postgres.new_database()
    db = Database(url)
    db.migrate()
    db.dispose()
    return url


@pytest.fixture
def dbs(url: str) -> Iterator[list[Database]]:
    """One engine per would-be server."""
    engines = [Database(url) for _ in range(8)]
    yield engines
    for db in engines:
        db.dispose()


def acquire(db: Database, holder: str, now: int) -> int | None:
    with db.transaction() as session:
        return leases.acquire(session, leases.CONTROLLER, holder, now, TTL)


def race(dbs: list[Database], now: int) -> list[int | None]:
    start = threading.Barrier(len(dbs))
    won: list[int | None] = [None] * len(dbs)

    def run(i: int) -> None:
        start.wait()
        won[i] = acquire(dbs[i], f"server-{i}", now)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(dbs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won


def test_servers_racing_for_the_lease_never_both_win(dbs: list[Database]) -> None:
    for round_, now in enumerate(range(10_000, 10_000 + 20 * TTL, TTL), start=1):
        won = race(dbs, now)  # each round, the last holder's lease has just expired
        assert [t for t in won if t is not None] == [round_], won


def test_a_stale_leaders_write_is_refused_after_another_acquires(dbs: list[Database]) -> None:
    a, b = dbs[0], dbs[1]
    fenced = Fenced(a, leases.CONTROLLER)
    fenced.term = Term("a", acquire(a, "a", 1_000) or 0)
    with fenced.transaction() as session:
        snapshots.save(session, 1, '{"from": "a"}')
    assert acquire(b, "b", 1_000 + TTL) == 2
    with pytest.raises(LeaseLost), fenced.transaction() as session:
        snapshots.save(session, 2, '{"from": "a, stale"}')
    with b.transaction() as session:
        assert snapshots.load(session) == (1, '{"from": "a"}')


def test_an_acquisition_waits_for_the_fenced_transaction_under_way(dbs: list[Database]) -> None:
    """The check share-locks the lease: a write checked under the old token lands before the
    new holder's term begins, never after."""
    a, b = dbs[0], dbs[1]
    fenced = Fenced(a, leases.CONTROLLER)
    fenced.term = Term("a", acquire(a, "a", 1_000) or 0)
    taken: list[int | None] = []
    with fenced.transaction() as session:
        thief = threading.Thread(target=lambda: taken.append(acquire(b, "b", 1_000 + TTL)))
        thief.start()
        thief.join(timeout=0.5)
        assert thief.is_alive()  # held off by the share lock
        snapshots.save(session, 1, '{"from": "a"}')
    thief.join(timeout=10)
    assert taken == [2]
