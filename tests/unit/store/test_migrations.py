"""The Alembic migrations build exactly the schema the ORM rows describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from berth.store.db import Database
from berth.store.tables import Base


def test_migrated_schema_matches_the_rows(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'berth.db'}")
    db.migrate()
    try:
        assert db.is_migrated()
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        db.dispose()
