"""Engine, sessions and migrations of the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from berth.core.errors import Unavailable

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """One engine per process; sessions are short and scoped to one unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error."""
        with self._sessions.begin() as session:
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest revision."""
        with self.engine.begin() as conn:
            cfg = self._alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def is_migrated(self) -> bool:
        """True when the store answers and its schema is at the newest revision."""
        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                current = MigrationContext.configure(conn).get_current_revision()
        except SQLAlchemyError as exc:
            raise Unavailable(f"The store at {self.engine.url!r} cannot be reached: {exc}") from exc
        return current == head

    def dispose(self) -> None:
        self.engine.dispose()

    @staticmethod
    def _alembic_config() -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        return cfg
