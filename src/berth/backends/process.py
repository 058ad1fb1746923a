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
    """A replica process: a child we started, one a zygote forked for us, or one adopted from
    a previous server run. ``started`` (its start time in clock ticks since boot) tells it
    apart from a later process that got the same pid."""

    def __init__(self, pid: int, child: asyncio.subprocess.Process | None) -> None:
        self.pid = pid
        self._child = child
        self.started = start_time(pid)

    @classmethod
    def existing(cls, pid: int, started: int) -> Process | None:
        """The process ``pid`` if it is still the one that started at ``started``."""
        found = cls(pid, None)
        return found if found.started == started and found.alive() else None

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


def runtime_args(spec: ReplicaSpec, folder: Path) -> list[str]:
    """The flags of ``python -m berth.runtime`` for one replica."""
    args = [
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
        args += ["--warmup-json", spec.warmup_json]
    if spec.max_batch_size > 1:
        args += [
            "--max-batch-size",
            str(spec.max_batch_size),
            "--max-batch-wait-ms",
            str(spec.max_batch_wait_ms),
        ]
    return args


def model_env(spec: ReplicaSpec, reveal: Reveal | None) -> dict[str, str]:
    """The environment of a process running in the model's environment; secret references
    in ``spec.env`` are resolved here only, never written anywhere (``state.json`` keeps the
    references)."""
    given = {k: (reveal(v) if reveal else None) or v for k, v in spec.env}
    env = {**os.environ, **given, "PYTHONUNBUFFERED": "1"}
    env.pop("VIRTUAL_ENV", None)
    if spec.pythonpath is not None:
        env["PYTHONPATH"] = spec.pythonpath
    return env


async def spawn_replica(
    replica_id: str, spec: ReplicaSpec, folder: Path, reveal: Reveal | None = None
) -> Process:
    """Start the runtime as a child in its own session, output to ``replica.log``."""
    command = [spec.python, "-m", "berth.runtime", *runtime_args(spec, folder)]
    env = {**model_env(spec, reveal), "BERTH_REPLICA_ID": replica_id}
    return await start_in_session(command, env, folder, folder / "replica.log")


async def start_in_session(
    command: list[str], env: dict[str, str], cwd: Path, log: Path
) -> Process:
    """A child in a session (and process group) of its own, stdout and stderr to ``log``."""
    with log.open("ab") as out:
        child = await asyncio.create_subprocess_exec(
            *command,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=cwd,
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


def _stat(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` after the command name (which may hold spaces), or []."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()
    except (OSError, IndexError):
        return []


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if len(fields) > 19 else None


def _is_zombie(pid: int) -> bool:
    fields = _stat(pid)
    return bool(fields) and fields[0] == "Z"
