"""The controller lease: one holder at a time, a larger fencing token on each acquisition, and
fenced transactions that refuse a holder whose token is stale."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from berth.core.errors import LeaseLost
from berth.store import leases, snapshots
from berth.store.db import Database
from berth.store.fencing import Fenced, Term

NAME = leases.CONTROLLER
TTL = 6_000


def acquire(db: Database, holder: str, now: int) -> int | None:
    with db.transaction() as session:
        return leases.acquire(session, NAME, holder, now, TTL)


def renew(db: Database, holder: str, token: int, now: int) -> bool:
    with db.transaction() as session:
        return leases.renew(session, NAME, holder, token, now, TTL)


def test_one_holder_until_the_lease_expires_then_a_larger_token(db: Database) -> None:
    assert acquire(db, "a", 1_000) == 1
    assert acquire(db, "b", 1_000 + TTL - 1) is None
    assert renew(db, "a", 1, 5_000)  # now held until 11_000
    assert acquire(db, "b", 10_999) is None
    assert acquire(db, "b", 11_000) == 2
    assert not renew(db, "a", 1, 11_001)  # the former holder cannot extend it back
    with db.transaction() as session:
        assert leases.current(session, NAME) == leases.Lease("b", 2, 11_000 + TTL)


def test_a_restarted_holder_takes_its_own_lease_back_under_a_new_token(db: Database) -> None:
    assert acquire(db, "a", 1_000) == 1
    assert acquire(db, "a", 1_001) == 2
    assert not renew(db, "a", 1, 1_002)  # its earlier life is fenced out


def test_a_released_lease_is_taken_at_once(db: Database) -> None:
    assert acquire(db, "a", 1_000) == 1
    with db.transaction() as session:
        leases.release(session, NAME, "a", 1)
    assert acquire(db, "b", 1_001) == 2


def test_a_stale_release_lets_nothing_go(db: Database) -> None:
    assert acquire(db, "a", 1_000) == 1
    assert acquire(db, "b", 1_000 + TTL) == 2
    with db.transaction() as session:
        leases.release(session, NAME, "a", 1)
    assert acquire(db, "c", 1_000 + TTL + 1) is None


def test_a_write_under_a_stale_token_is_refused_and_leaves_nothing(db: Database) -> None:
    fenced = Fenced(db, NAME)
    fenced.term = Term("a", acquire(db, "a", 1_000) or 0)
    with fenced.transaction() as session:
        snapshots.save(session, 1, "{}")
    assert acquire(db, "b", 1_000 + TTL) == 2  # "a" paused past its lease
    with pytest.raises(LeaseLost, match="held by 'b' under token 2"), fenced.transaction() as s:
        snapshots.save(s, 2, "{}")
    with db.transaction() as session:
        assert snapshots.load(session) == (1, "{}")


def test_a_server_without_the_lease_writes_nothing(db: Database) -> None:
    with pytest.raises(LeaseLost, match="does not hold"), Fenced(db, NAME).transaction():
        pytest.fail("the transaction's body ran")


def test_racing_servers_never_both_acquire(tmp_path: Path) -> None:
    """Several processes' worth of engines on one SQLite file, all trying at the same instant."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    Database(url).migrate()
    dbs = [Database(url) for _ in range(8)]
    start = threading.Barrier(len(dbs))
    won: list[int | None] = [None] * len(dbs)

    def race(i: int) -> None:
        start.wait()
        won[i] = acquire(dbs[i], f"s{i}", 5_000)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(dbs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for database in dbs:
        database.dispose()
    assert [t for t in won if t is not None] == [1]
