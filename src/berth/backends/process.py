"""Replica processes: spawning one in its own process group, finding it again, stopping it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

from berth.backends.base import ReplicaSpec

POLL_S = 0.2


class Process:
    """A replica process we started (a child) or adopted from a previous server run."""

    def __init__(self, pid: int, child: asyncio.subprocess.Process | None) -> None:
        self.pid = pid
        self._child = child

    @classmethod
    def existing(cls, pid: int, replica_id: str) -> Process | None:
        """The process ``pid`` if it still runs *this* replica (pids get reused)."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return cls(pid, None) if replica_id.encode() in cmdline else None

    @property
    def returncode(self) -> int | None:
        return self._child.returncode if self._child is not None else None

    def alive(self) -> bool:
        if self._child is not None:
            return self._child.returncode is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return not _is_zombie(self.pid)

    async def wait(self) -> None:
        if self._child is not None:
            await self._child.wait()
            return
        while self.alive():
            await asyncio.sleep(POLL_S)

    async def terminate(self, grace_s: float = 15.0) -> None:
        """SIGTERM the whole group (the runtime drains in-flight requests), SIGKILL past grace."""
        _signal_group(self.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.wait(), grace_s)
        except TimeoutError:
            _signal_group(self.pid, signal.SIGKILL)
            await self.wait()


Reveal = Callable[[str], str | None]
"""The value a ``{{secrets/scope/key}}`` reference names, or None for any other text."""


async def spawn_replica(
    replica_id: str, spec: ReplicaSpec, folder: Path, reveal: Reveal | None = None
) -> Process:
    """Start the runtime; secret references in ``spec.env`` are resolved only into the child's
    environment, never written anywhere (``state.json`` keeps the references)."""
    command = [
        spec.python,
        "-m",
        "berth.runtime",
        "--artifact",
        spec.artifact,
        "--format",
        spec.model_format,
        "--port-file",
        str(folder / "port"),
        "--max-concurrency",
        str(spec.max_concurrency),
    ]
    if spec.warmup_json:
        command += ["--warmup-json", spec.warmup_json]
    given = {k: (reveal(v) if reveal else None) or v for k, v in spec.env}
    env = {**os.environ, **given, "PYTHONUNBUFFERED": "1", "BERTH_REPLICA_ID": replica_id}
    env.pop("VIRTUAL_ENV", None)
    if spec.pythonpath is not None:
        env["PYTHONPATH"] = spec.pythonpath
    with (folder / "replica.log").open("ab") as log:
        child = await asyncio.create_subprocess_exec(
            *command,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=folder,
        )
    return Process(child.pid, child)


def read_tail(path: Path, max_bytes: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False
