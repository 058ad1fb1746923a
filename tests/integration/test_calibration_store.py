"""Calibrations in the store, on SQLite and on a real PostgreSQL: one per version and kind of
host, replaced by a new one, gone with their version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.store import calibrations, models
from berth.store.db import Database
from tests.support.throughput import calibration

pytestmark = [pytest.mark.integration, pytest.mark.stores("sqlite", "postgresql")]

HERE = "AMD EPYC, 2 logical CPUs; xllamacpp==1"
ELSEWHERE = "Intel Xeon, 8 logical CPUs; xllamacpp==1"


@pytest.fixture
def db(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'berth.db'}"
    if store_kind == "postgresql":
        url = request.getfixturevalue("postgres").new_database()
    database = Database(url)
    database.migrate()
    with database.transaction() as session:
        models.create_model(session, name="smol", description="", tags=[], creator="a", now_ms=1)
        for version in (1, 2):
            new = models.NewVersion("/src", "gguf", "READY", f"/a/{version}", {}, "", "a")
            models.add_version(session, "smol", models.allocate_version(session, "smol", 1), new, 1)
    yield database
    database.dispose()


def test_one_chunk_per_version_and_host_replaced_when_measured_again(db: Database) -> None:
    with db.transaction() as session:
        calibrations.save(session, "smol", 1, calibration(95, HERE))
        calibrations.save(session, "smol", 1, calibration(400, ELSEWHERE))
    with db.transaction() as session:
        calibrations.save(session, "smol", 1, calibration(90, HERE))
    with db.transaction() as session:
        here = calibrations.get(session, "smol", 1, HERE)
        assert here is not None and here.chunk_tps == 90
        assert here == calibration(90, HERE)
        elsewhere = calibrations.get(session, "smol", 1, ELSEWHERE)
        assert elsewhere is not None and elsewhere.chunk_tps == 400
        assert calibrations.get(session, "smol", 2, HERE) is None


def test_calibrations_go_with_their_version(db: Database) -> None:
    with db.transaction() as session:
        calibrations.save(session, "smol", 1, calibration(95, HERE))
        calibrations.save(session, "smol", 2, calibration(95, HERE))
    with db.transaction() as session:
        models.delete_version(session, "smol", 1, 2)
    with db.transaction() as session:
        models.add_version(
            session, "smol", 1, models.NewVersion("/src", "gguf", "READY", "/a/1", {}, "", "a"), 3
        )
        assert calibrations.get(session, "smol", 1, HERE) is None  # a new version 1: measured anew
        assert calibrations.get(session, "smol", 2, HERE) is not None
