"""Shared fixtures: real berth servers on SQLite, and on a real PostgreSQL server for the tests
marked ``stores("sqlite", "postgresql")`` (those that exercise the store); and the checks that
fail a test leaving child processes or asyncio tasks behind."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.leaks import (
    Children,
    PendingTasks,
    describe,
    kill,
    live_children,
    runtimes_under,
)
from tests.support.postgres import PostgresCluster
from tests.support.servers import BerthServer
from tests.support.system import ensure_installed

STORES = ("sqlite", "postgresql")
DEFAULT_STORES = ("sqlite",)
INTEGRATION = Path(__file__).parent / "integration"
pytest_plugins = [
    "tests.support.browser",
    "tests.support.ftp",
    "tests.support.ha",
    "tests.support.llm",
    "tests.support.redis",
    "tests.support.trainer",
]
CHILDREN = Children()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that start servers run on SQLite; those marked ``stores(...)`` on each store named.
    Session-scoped, so each store's servers are shared by every test that runs on it."""
    if "store_kind" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("stores")
    kinds = marker.args if marker else DEFAULT_STORES
    if not kinds or set(kinds) - set(STORES):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: stores{kinds}, known: {STORES}")
    metafunc.parametrize("store_kind", kinds, indirect=True, scope="session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every module under tests/integration says so (``pytestmark``), and no other does."""
    for item in items:
        marked = item.get_closest_marker("integration") is not None
        inside = item.path.is_relative_to(INTEGRATION)
        if marked and not inside:
            raise pytest.UsageError(f"{item.nodeid}: marked integration outside tests/integration")
        if inside and not marked:
            raise pytest.UsageError(
                f"{item.nodeid}: under tests/integration, so its module needs "
                "pytestmark = pytest.mark.integration"
            )


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[object]) -> Generator[None, object, object]:
    """Processes that session and module fixtures start outlive single tests: not leaks."""
    if fixturedef.scope == "function":
        return (yield)
    with CHILDREN.keeping_new():
        return (yield)


@pytest.fixture(scope="session", autouse=True)
def no_orphan_replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail the session when replica runtimes of its servers outlive them all: a replica whose
    server died or was cut short is reparented to init, beyond `no_leaked_children`."""
    yield
    orphans = runtimes_under(tmp_path_factory.getbasetemp())
    if orphans:
        described = [describe(pid) for pid in sorted(orphans)]
        kill(orphans)
        pytest.fail("replica runtimes outlived the session's servers:\n" + "\n".join(described))


@pytest.fixture(autouse=True)
def no_leaked_children() -> Iterator[None]:
    """Fail a test that leaves a child process running (after its own fixtures' teardown)."""
    before = live_children()
    yield
    leaked = CHILDREN.leaked(before)
    if leaked:
        described = [describe(pid) for pid in sorted(leaked)]
        kill(leaked)
        pytest.fail("the test left child processes running:\n" + "\n".join(described))


@pytest.fixture(autouse=True)
def no_pending_tasks() -> Iterator[PendingTasks]:
    """Fail a test whose ``asyncio.run`` returned with tasks still pending on its loop."""
    tasks = PendingTasks()
    with tasks.watching():
        yield tasks
    if tasks.found:
        pytest.fail("the test left asyncio tasks pending:\n" + "\n".join(tasks.found))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    # Not under pytest's tmp dir: that is private to root, and the server runs as 'postgres'.
    root = Path(tempfile.mkdtemp(prefix="berth-pg-"))
    cluster = PostgresCluster.start(root)
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def store_kind(request: pytest.FixtureRequest) -> str:
    """The store this test's servers run on (see ``pytest_generate_tests``)."""
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
        server.start(*args)
        assert server.proc is not None
        CHILDREN.keep(server.proc.pid)  # stopped at the session's end, below
        return server

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
