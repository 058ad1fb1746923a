"""Keeps tests inside their process: connecting or binding a socket and starting a process are
refused (and remembered, so a test that swallows the error fails all the same). Unit tests run
under it (``tests/unit/conftest.py``); what needs a socket or a process is an integration test.

A socket pair stays allowed: it never leaves the process, and every asyncio loop makes one."""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest


class OutOfProcess(RuntimeError):
    """A unit test tried to reach outside its process."""


# Every way the standard library starts a process goes through one of these.
PROCESS_STARTS = ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system")


@dataclass
class InProcess:
    attempts: list[str] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for method in ("connect", "connect_ex", "bind"):
            monkeypatch.setattr(socket.socket, method, self._refuse(f"socket.{method}"))
        monkeypatch.setattr(subprocess.Popen, "__init__", self._refuse("subprocess.Popen"))
        for name in PROCESS_STARTS:
            if hasattr(os, name):
                monkeypatch.setattr(os, name, self._refuse(f"os.{name}"))

    def _refuse(self, what: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            shown = ", ".join(repr(arg) for arg in args[1:3])
            self.attempts.append(f"{what}({shown})")
            raise OutOfProcess(
                f"{what}: a unit test starts no process and opens no socket; "
                "move this test to tests/integration"
            )

        return refuse
