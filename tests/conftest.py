"""Shared fixtures: real berth servers on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import PostgresCluster
from tests.support.servers import BerthServer
from tests.support.system import ensure_installed

STORES = ["sqlite", "postgresql"]
pytest_plugins = ["tests.support.llm", "tests.support.redis", "tests.support.trainer"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    # Not under pytest's tmp dir: that is private to root, and the server runs as 'postgres'.
    root = Path(tempfile.mkdtemp(prefix="berth-pg-"))
    cluster = PostgresCluster.start(root)
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def bubblewrap() -> str:
    """Replicas run sandboxed (servers start with ``BERTH_SANDBOX__MODE=bwrap``)."""
    return ensure_installed("bubblewrap", lambda: shutil.which("bwrap"))


@pytest.fixture(scope="session")
def make_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    store_kind: str,
    bubblewrap: str,
) -> Iterator[Callable[..., BerthServer]]:
    """Start fresh berth servers on the parametrised store; all are stopped at the end."""
    started: list[BerthServer] = []
    if store_kind == "postgresql":  # set up first, so torn down after the servers it serves
        request.getfixturevalue("postgres")

    def make(*args: str, home: Path | None = None, **env: str) -> BerthServer:
        database_url = None
        if store_kind == "postgresql":
            database_url = request.getfixturevalue("postgres").new_database()
        server = BerthServer(
            home=home or tmp_path_factory.mktemp("berth-home"),
            database_url=database_url,
            extra_env=env,
        )
        started.append(server)
        return server.start(*args)

    yield make
    for server in started:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


@pytest.fixture(scope="session")
def server(make_server: Callable[..., BerthServer]) -> BerthServer:
    """One shared server per store for tests that use unique names."""
    return make_server()


@pytest.fixture
def api(server: BerthServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
