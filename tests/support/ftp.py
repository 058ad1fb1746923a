"""A real FTP server (pyftpdlib) for the tests: an artifact store at an fsspec URL other than
this machine's filesystem, which several processes (servers, Ray nodes) reach over the
network. A user with a password, a free loopback port, a temporary folder."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_until

USER, PASSWORD = "berth", "ftp-s3cret"


@dataclass
class FtpServer:
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        """``ftp://user:password@127.0.0.1:port/path``: the password travels in the URL."""
        return f"ftp://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{path.strip('/')}"

    def start(self) -> FtpServer:
        self.root.mkdir(parents=True, exist_ok=True)
        args = ["-i", "127.0.0.1", "-p", str(self.port), "-w", "-d", str(self.root)]
        args += ["-u", USER, "-P", PASSWORD]
        with (self.root.parent / f"{self.root.name}.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pyftpdlib", *args], stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._answers, timeout=30, what=f"the FTP server on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the FTP server exited with {self.proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                return conn.recv(3) == b"220"
        except OSError:
            return False


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpServer]:
    """One server for the session; tests keep apart under folders of their own."""
    server = FtpServer(tmp_path_factory.mktemp("ftp") / "root").start()
    yield server
    server.stop()
