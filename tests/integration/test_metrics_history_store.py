"""The metrics history in the store, on SQLite and on a real PostgreSQL: usage sums keep their
latency histograms, rows from before the histogram still read, replica samples are replaced
within their minute and dropped when old."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from berth.core.latency import BUCKETS
from berth.core.usage import UNATTRIBUTED, Outcome, UsageKey, UsageSum
from berth.store import replica_history, usage
from berth.store.db import MIGRATIONS_DIR, Database
from berth.store.replica_history import ReplicaSample

pytestmark = [pytest.mark.integration, pytest.mark.stores("sqlite", "postgresql")]

MINUTE = 1_700_000_040_000


@pytest.fixture
def url(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if store_kind == "postgresql":
        return str(request.getfixturevalue("postgres").new_database())
    return f"sqlite:///{tmp_path / 'berth.db'}"


@pytest.fixture
def db(url: str) -> Iterator[Database]:
    database = Database(url)
    database.migrate()
    yield database
    database.dispose()


def summed(*latencies_ms: float) -> UsageSum:
    found = UsageSum()
    for latency in latencies_ms:
        found.add(Outcome("ep-id", "a", "ann", 200, latency, 1, 2))
    return found


def read(db: Database, endpoint: str = "ep-id") -> list[tuple[UsageKey, UsageSum]]:
    with db.transaction() as session:
        return sorted(usage.per_minute(session, endpoint, MINUTE, MINUTE + 60_000), key=repr)


def test_usage_sums_add_their_latency_histograms(db: Database) -> None:
    key = UsageKey(MINUTE, "ep-id", "a", "ann", 200)
    with db.transaction() as session:
        usage.add(session, {key: summed(3.0, 70.0)})
    with db.transaction() as session:
        usage.add(session, {key: summed(80.0)})
    ((found_key, found),) = read(db)
    assert found_key == key
    assert (found.requests, found.input_tokens, found.output_tokens) == (3, 3, 6)
    assert found.latency_buckets == summed(3.0, 70.0, 80.0).latency_buckets
    assert read(db, "other-id") == []


def test_history_only_sums_count_for_the_history_but_not_in_usage_reports(db: Database) -> None:
    with db.transaction() as session:
        usage.add(session, {UsageKey(MINUTE, "ep-id", "a", UNATTRIBUTED, 200): summed(1.0)})
        usage.add(session, {UsageKey(MINUTE, "ep-id", "a", "ann", 200): summed(1.0, 1.0)})
    assert sum(found.requests for _, found in read(db)) == 3
    with db.transaction() as session:
        (report,) = usage.summarise(
            session, by=("endpoint", "principal"), since_ms=0, until_ms=2**53
        )
    assert (report.principal, report.requests) == ("ann", 2)


def test_rows_from_before_the_histogram_read_and_add_up(url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    database = Database(url)
    try:
        with database.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0006")
            conn.execute(
                text(
                    "INSERT INTO usage (minute, endpoint, served_entity, principal, status, "
                    "requests, input_tokens, output_tokens, latency_ms) "
                    "VALUES (:minute, 'ep-id', 'a', 'ann', 200, 4, 0, 0, 40.0)"
                ),
                {"minute": MINUTE},
            )
        database.migrate()
        ((_, old),) = read(database)
        assert old.requests == 4 and old.latency_buckets == [0] * BUCKETS
        with database.transaction() as session:
            usage.add(session, {UsageKey(MINUTE, "ep-id", "a", "ann", 200): summed(70.0)})
        ((_, added),) = read(database)
        assert added.requests == 5 and added.latency_buckets == summed(70.0).latency_buckets
    finally:
        database.dispose()


def test_replica_samples_replace_their_minutes_and_old_ones_go(db: Database) -> None:
    with db.transaction() as session:
        replica_history.record(session, [ReplicaSample(MINUTE, "ep-id", "a", 0, 1)])
        replica_history.record(session, [ReplicaSample(MINUTE + 60_000, "ep-id", "a", 1, 1)])
    with db.transaction() as session:
        replica_history.record(session, [ReplicaSample(MINUTE, "ep-id", "a", 1, 2)])
        replica_history.record(session, [ReplicaSample(MINUTE, "other-id", "a", 5, 5)])
    with db.transaction() as session:
        found = replica_history.samples(session, "ep-id", MINUTE, MINUTE + 120_000)
    assert [(s.minute, s.ready, s.desired) for s in found] == [
        (MINUTE, 1, 2),
        (MINUTE + 60_000, 1, 1),
    ]
    with db.transaction() as session:
        replica_history.forget_before(session, MINUTE + 60_000)
    with db.transaction() as session:
        found = replica_history.samples(session, "ep-id", 0, 2**53)
    assert [s.minute for s in found] == [MINUTE + 60_000]
