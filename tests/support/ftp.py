"""A real FTP server (pyftpdlib) for the tests: an artifact store at an fsspec URL other than
this machine's filesystem, which several processes (servers, Ray nodes) reach over the
network. A user with a password, a free loopback port, a temporary folder."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.system import LoopbackServer

USER, PASSWORD = "berth", "ftp-s3cret"


class FtpServer(LoopbackServer):
    def url(self, path: str) -> str:
        """``ftp://user:password@127.0.0.1:port/path``: the password travels in the URL."""
        return f"ftp://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{path.strip('/')}"

    def launch(self) -> subprocess.Popen[bytes]:
        args = ["-i", "127.0.0.1", "-p", str(self.port), "-w", "-d", str(self.root)]
        args += ["-u", USER, "-P", PASSWORD]
        with self._log.open("wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "pyftpdlib", *args], stdout=log, stderr=subprocess.STDOUT
            )

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                return conn.recv(3) == b"220"
        except OSError:
            return False

    def log_tail(self) -> str:
        return self._log.read_text(errors="replace")[-2000:]

    @property
    def _log(self) -> Path:
        return self.root.parent / f"{self.root.name}.log"


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    """One server for the session; tests keep apart under folders of their own."""
    server = FtpServer(tmp_path_factory.mktemp("ftp") / "root").start()
    yield server
    server.stop()
