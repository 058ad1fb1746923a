"""Server binaries the tests start (PostgreSQL, Redis), installed from Debian's packages when
they are missing, so ``./uvw run pytest`` works on a fresh machine as ``.ci/run`` does."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tests.support.net import free_port, wait_until


def ensure_installed(package: str, find: Callable[[], str | None]) -> str:
    """``find()``'s answer, after installing ``package`` with apt-get if it found nothing."""
    found = find()
    if found is not None:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", package],
            check=True,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = find()
    if found is None:
        raise RuntimeError(f"{package} is needed by the tests: apt-get install {package}")
    return found


def terminate(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, and SIGKILL when it has not exited within ``timeout``; reaped either way."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


@dataclass
class LoopbackServer:
    """A server process the tests start on a free loopback port, its files under ``root``:
    subclasses say how it starts (`launch`), how it answers (`answers`) and what it logged
    (`log_tail`)."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start (or restart, on the same port) and wait until it answers."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = self.launch()
        wait_until(self._up, timeout=30, what=f"{type(self).__name__} on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        terminate(self.proc)
        self.proc = None

    def launch(self) -> subprocess.Popen[bytes]:
        raise NotImplementedError

    def answers(self) -> bool:
        raise NotImplementedError

    def log_tail(self) -> str:
        return ""

    def _up(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{type(self).__name__} exited with {self.proc.returncode}:\n{self.log_tail()}"
            )
        return self.answers()
