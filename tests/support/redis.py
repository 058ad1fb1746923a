"""A real Redis server for the tests: no persistence, a free loopback port, a temporary folder."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
import redis

from tests.support.system import LoopbackServer, ensure_installed


class RedisServer(LoopbackServer):
    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def launch(self) -> subprocess.Popen[bytes]:
        binary = ensure_installed("redis-server", lambda: shutil.which("redis-server"))
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root)]
        args += ["--save", "", "--appendonly", "no", "--logfile", str(self.root / "redis.log")]
        return subprocess.Popen([binary, *args])

    def answers(self) -> bool:
        try:
            with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False

    def log_tail(self) -> str:
        return (self.root / "redis.log").read_text(errors="replace")[-2000:]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One server for the session; tests keep apart by using keys of their own."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()
