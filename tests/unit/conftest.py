"""Fixtures shared by unit tests: a migrated SQLite store in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from berth.store.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'berth.db'}")
    database.migrate()
    yield database
    database.dispose()
