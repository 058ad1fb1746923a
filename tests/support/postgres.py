"""A real PostgreSQL server for the tests: a throwaway cluster on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.net import free_port, wait_until
from tests.support.system import ensure_installed


def _pg_tool(name: str) -> str:
    return ensure_installed("postgresql", lambda: _find_pg_tool(name))


def _find_pg_tool(name: str) -> str | None:
    for directory in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (directory / name).exists():
            return str(directory / name)
    return shutil.which(name)


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; drop to the 'postgres' user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@dataclass
class PostgresCluster:
    data_dir: Path
    port: int

    @classmethod
    def start(cls, root: Path) -> PostgresCluster:
        root.mkdir(parents=True, exist_ok=True)
        data_dir = root / "data"
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        subprocess.run(
            _as_postgres_user(
                [_pg_tool("initdb"), "-D", str(data_dir), "-U", "postgres", "-A", "trust"]
            ),
            check=True,
            capture_output=True,
        )
        port = free_port()
        subprocess.run(
            _as_postgres_user(
                [
                    _pg_tool("pg_ctl"),
                    "-D",
                    str(data_dir),
                    "-l",
                    str(root / "server.log"),
                    "-o",
                    f"-p {port} -h 127.0.0.1 -k {root} -c fsync=off",
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        cluster = cls(data_dir=data_dir, port=port)
        wait_until(cluster._accepts, timeout=30, what="PostgreSQL to accept connections")
        return cluster

    def stop(self) -> None:
        subprocess.run(
            _as_postgres_user([_pg_tool("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "stop"]),
            check=False,
            capture_output=True,
        )

    def _dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(self._dsn(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = "berth_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self._dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"
