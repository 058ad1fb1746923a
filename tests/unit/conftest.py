"""Fixtures shared by unit tests: a migrated SQLite store in a temporary folder; and every unit
test runs in process, with no socket and no child process (``tests.support.in_process``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.store.db import Database
from tests.support.in_process import InProcess


@pytest.fixture(scope="package", autouse=True)
def in_process() -> Iterator[InProcess]:
    """Over the whole unit package, so module fixtures are held to it too."""
    guard = InProcess()
    with pytest.MonkeyPatch.context() as monkeypatch:
        guard.install(monkeypatch)
        yield guard


@pytest.fixture(autouse=True)
def stays_in_process(in_process: InProcess) -> Iterator[None]:
    """Fail the test even where its code caught the refusal."""
    in_process.attempts.clear()
    yield
    if in_process.attempts:
        pytest.fail("the test reached outside its process: " + "; ".join(in_process.attempts))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'berth.db'}")
    database.migrate()
    yield database
    database.dispose()
