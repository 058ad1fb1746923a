"""Replica processes: spawning one in its own process group, finding it again, stopping it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx

from berth.backends.base import ReplicaSpec
from berth.core.container_contract import container_name
from berth.core.errors import BerthError
from berth.core.gpus import device_files
from berth.core.images import ImageRuntime
from berth.sandbox import Box, Sandbox, Wrapped, python_dirs

POLL_S = 0.2
PODMAN_ENV_PREFIX = "CONTAINERS_"
"""podman's own configuration (``CONTAINERS_CONF``, ``CONTAINERS_STORAGE_CONF``)."""


class Process:
    """A replica process: a child we started (through bubblewrap or not), one a zygote forked
    for us, or one adopted from a previous server run. ``pid`` is the model's own process as
    the host sees it; ``started`` (its start time in clock ticks since boot) tells it apart
    from a later process that got the same pid."""

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
        if self._child is not None and self._child.pid == self.pid:
            return self._child.returncode is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not _is_zombie(self.pid)

    async def wait(self) -> None:
        """Until the model's process exits (through bubblewrap, the child we started only
        relays it: killing that one alone does not stop the replica)."""
        if self._child is not None and self._child.pid == self.pid:
            await self._child.wait()
            return
        await _exited(self.pid, self.alive)

    async def terminate(self, grace_s: float = 15.0) -> None:
        """SIGTERM the whole group (the runtime drains in-flight requests), SIGKILL past grace,
        or at once when the wait is cancelled (the server stopping mid-drain): a stop cut
        short must not leave the replica running with no one left to stop it."""
        group = _group_of(self.pid)
        _signal_group(group, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.wait(), grace_s)
        except TimeoutError:
            _signal_group(group, signal.SIGKILL)
            await self.wait()
        except asyncio.CancelledError:
            _signal_group(group, signal.SIGKILL)
            raise

    def kill(self) -> None:
        """SIGKILL the group at once (a replica that stopped answering)."""
        _signal_group(_group_of(self.pid), signal.SIGKILL)


Reveal = Callable[[str], str | None]
"""The value a ``{{secrets/scope/key}}`` reference names, or None for any other text."""


def runtime_args(spec: ReplicaSpec, socket: Path) -> list[str]:
    """The flags of ``python -m berth.runtime`` for one replica listening on ``socket``."""
    return listening_args(spec, ["--socket", str(socket)])


def listening_args(spec: ReplicaSpec, listen: list[str]) -> list[str]:
    """The flags of ``python -m berth.runtime`` for one replica; ``listen`` says where it
    listens (``--socket S``, or ``--host H --port 0 --port-file F``)."""
    args = [
        "--artifact",
        spec.artifact,
        "--format",
        spec.model_format,
        *listen,
        "--max-concurrency",
        str(spec.max_concurrency),
    ]
    if spec.warmup_json:
        args += ["--warmup-json", spec.warmup_json]
    if spec.task:
        args += ["--task", spec.task]
    if spec.container:
        args += ["--container-json", spec.container]
    if spec.max_batch_size > 1:
        args += [
            "--max-batch-size",
            str(spec.max_batch_size),
            "--max-batch-wait-ms",
            str(spec.max_batch_wait_ms),
        ]
    return args


def model_variables(spec: ReplicaSpec, reveal: Reveal | None) -> dict[str, str]:
    """The entity's own variables. Secret references in ``spec.env`` are resolved here only,
    never written anywhere (``state.json`` keeps the references)."""
    return {k: (reveal(v) if reveal else None) or v for k, v in spec.env}


def model_env(spec: ReplicaSpec, sandbox: Sandbox, reveal: Reveal | None) -> dict[str, str]:
    """The environment of a process running model code: the sandbox's allow-list, then the
    entity's own variables."""
    env = {**sandbox.base_env(), **model_variables(spec, reveal), "PYTHONUNBUFFERED": "1"}
    if spec.pythonpath is not None:
        env["PYTHONPATH"] = spec.pythonpath
    return env


def model_view(spec: ReplicaSpec) -> list[str]:
    """What a replica of ``spec`` reads: its interpreter, the runtime and its artifact."""
    return [*python_dirs(spec.python), spec.pythonpath or "", spec.artifact]


def box_of(sandbox: Sandbox, spec: ReplicaSpec) -> Box:
    return sandbox.box(spec.artifact, spec.python, spec.pythonpath or "")


async def spawn_replica(
    replica_id: str,
    spec: ReplicaSpec,
    sandbox: Sandbox,
    log: Path,
    reveal: Reveal | None = None,
    gpus: tuple[str, ...] = (),
) -> Process:
    """Start the runtime in its sandbox, in a session of its own, output to ``log``; it sees
    only the ``gpus`` (host indices) it holds."""
    box = box_of(sandbox, spec)
    argv = [spec.python, "-m", "berth.runtime", *runtime_args(spec, box.socket(replica_id))]
    env = {**model_env(spec, sandbox, reveal), "REPLICA_ID": replica_id}
    if spec.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    wrapped = sandbox.command(
        argv,
        box,
        readable=model_view(spec),
        env=env,
        devices=device_files(gpus),
        own_network=spec.container is not None,  # its server listens on TCP
    )
    return await start_in_session(wrapped, box.home, log)


async def spawn_image_replica(
    replica_id: str,
    spec: ReplicaSpec,
    sandbox: Sandbox,
    log: Path,
    runtime: ImageRuntime,
    reveal: Reveal | None = None,
) -> Process:
    """Start the supervisor of a container version's image (`berth.runtime.image`): it runs
    the container with ``runtime`` (podman), which reads its configuration from the server's
    ``CONTAINERS_*`` variables.

    The supervisor and podman run as berth's user beside the sandbox, not in it, so neither
    may have a variable of the user's in its environment (``LD_PRELOAD``, ``CONTAINERS_CONF``,
    ``PYTHONPATH`` would run code or configure podman): the entity's variables, secrets
    revealed, reach the supervisor on a pipe, and the container through ``--env-file``."""
    if runtime.missing:
        raise BerthError(f"This host cannot run the version's image: {runtime.missing}.")
    box = box_of(sandbox, spec)
    given = json.dumps(model_variables(spec, reveal)).encode()
    read_end, write_end = os.pipe()
    told = json.dumps({"runtime": list(runtime.command), "env_fd": read_end})
    argv = [
        spec.python,
        "-m",
        "berth.runtime",
        *runtime_args(spec, box.socket(replica_id)),
        "--image-json",
        told,
    ]
    podman = {k: v for k, v in os.environ.items() if k.startswith(PODMAN_ENV_PREFIX)}
    env = {**sandbox.base_env(), **podman, "PYTHONUNBUFFERED": "1", "REPLICA_ID": replica_id}
    if spec.pythonpath is not None:
        env["PYTHONPATH"] = spec.pythonpath
    try:
        process = await start_in_session(
            sandbox.beside(argv, box, env), box.home, log, keep_fds=(read_end,)
        )
    finally:
        os.close(read_end)
    await asyncio.to_thread(_write_all, write_end, given)
    return process


def _write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to the pipe ``fd``, then its end (the reader takes it all)."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


async def remove_container(
    runtime: ImageRuntime, spec: ReplicaSpec, sandbox: Sandbox, replica_id: str
) -> None:
    """Remove the replica's container at once, if its supervisor was killed before it could."""
    name = container_name(str(box_of(sandbox, spec).socket(replica_id)))
    removal = await asyncio.create_subprocess_exec(
        *runtime.command,
        "rm",
        "--force",
        "--ignore",
        "--time",
        "0",
        name,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await removal.wait()


async def start_in_session(
    wrapped: Wrapped, cwd: Path, log: Path, keep_fds: tuple[int, ...] = ()
) -> Process:
    """A child in a session (and process group) of its own, stdout and stderr to ``log``,
    inheriting ``keep_fds``.

    Through bubblewrap, the model's process is not the child itself: bubblewrap tells its
    pid on a pipe (``--info-fd``)."""
    told = wrapped.info_at is not None
    info_r, info_w = os.pipe() if told else (-1, -1)
    argv = wrapped.with_info_fd(info_w)
    try:
        with _open_log(log) as out:
            child = await asyncio.create_subprocess_exec(
                *argv,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env=wrapped.env,
                start_new_session=True,
                cwd=cwd,
                pass_fds=((info_w,) if told else ()) + keep_fds,
            )
    finally:
        if told:
            os.close(info_w)
    if not told:
        return Process(child.pid, child)
    try:
        info = await asyncio.to_thread(_read_all, info_r)
    finally:
        os.close(info_r)
    try:
        pid = int(json.loads(info)["child-pid"])
    except (ValueError, KeyError, TypeError):
        await child.wait()  # bubblewrap failed before the model started: its output says why
        return Process(child.pid, child)
    return Process(pid, child)


def host_pid(parent: int, inner: int) -> int | None:
    """The host pid of ``parent``'s child whose pid is ``inner`` in its own PID namespace
    (a zygote inside bubblewrap tells the pids it forked as it sees them); None when no
    child of ``parent`` has it."""
    for child in _children(parent):
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:") and line.split()[-1] == str(inner):
                return child
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            found += [int(p) for p in task.read_text().split()]
    return found


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


async def _exited(pid: int, alive: Callable[[], bool]) -> None:
    """Return when ``pid`` (not our child) has exited: at once through a pidfd, else polled."""
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        while alive():
            await asyncio.sleep(POLL_S)
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def readable() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(pidfd, readable)
    try:
        while alive():  # a zombie stays readable; alive() tells it apart
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(done), POLL_S * 5)
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def _open_log(path: Path) -> IO[bytes]:
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")


def read_tail(path: Path, max_bytes: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _group_of(pid: int) -> int:
    """The process group to signal for ``pid``: its own, never the server's."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return pid
    return pid if group <= 1 or group == os.getpgrp() else group


def _signal_group(group: int, sig: signal.Signals) -> None:
    if group <= 1:  # 0 would be our own group, 1 init's
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)


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


async def health_of(
    client: httpx.AsyncClient, url: str, timeout_s: float
) -> tuple[int, dict[str, str]] | None:
    """A replica's answer to a health check: its status and JSON object (empty when it sent
    none); None when it does not answer."""
    try:
        response = await client.get(url, timeout=timeout_s)
    except httpx.HTTPError:
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}
