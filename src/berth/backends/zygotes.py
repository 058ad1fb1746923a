"""Warm zygotes: one per model version and environment, forking replicas that skip the heavy
imports.

The first replica of a model version starts the usual way, and a zygote starts beside it, in
the same sandbox box (``python -m berth.runtime.zygote``, importing what the model imports:
MLflow's pyfunc and the flavor's module, or a score.py's top-level imports). Later replicas
with the same artifact, interpreter, ``PYTHONPATH``, environment variables and imports are
forked from it, so they share its filesystem view and user, and nothing of another model's.
A zygote that is missing, still importing or gone only means the slow path. Its replicas'
output goes to a log file the server opens and passes over the socket (``SCM_RIGHTS``), as
their pid comes back as the zygote's PID namespace sees it and is mapped to the host's.
A zygote exits once it has no replica left and either nobody asked it for ``idle_s`` or the
server that started it is gone (end of file on an inherited pipe); inside its own PID
namespace its replicas would die with it.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import hashlib
import json
import logging
import os
import re
import socket as sockets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from berth.backends.base import ReplicaSpec
from berth.backends.process import (
    Process,
    Reveal,
    box_of,
    host_pid,
    model_env,
    model_view,
    runtime_args,
    start_in_session,
)
from berth.sandbox import Sandbox

log = logging.getLogger(__name__)

IDLE_S = 15 * 60.0
KEEP_EVERY_S = 60.0
REQUEST_TIMEOUT_S = 10.0
CLOSE_WAIT_S = 5.0


_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def required_distributions(artifact: Path) -> tuple[str, ...]:
    """The distributions the artifact's ``requirements.txt`` names (options and URLs aside)."""
    try:
        lines = (artifact / "requirements.txt").read_text().splitlines()
    except OSError:
        return ()
    names = []
    for line in lines:
        match = _REQUIREMENT_NAME.match(line)
        if match and "://" not in line:
            names.append(match.group(1))
    return tuple(names)


def preload_modules(artifact: Path, model_format: str) -> tuple[str, ...]:
    """What a replica of this artifact imports before it can load the model."""
    if model_format == "mlflow":
        try:
            mlmodel = yaml.safe_load((artifact / "MLmodel").read_text())
            loader = mlmodel["flavors"]["python_function"]["loader_module"]
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            return ("mlflow.pyfunc",)
        return ("mlflow.pyfunc", str(loader))
    if model_format == "gguf":
        return ("xllamacpp",)
    try:
        tree = ast.parse((artifact / "score.py").read_text())
    except (OSError, SyntaxError, ValueError):
        return ()
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    local = {path.stem for path in artifact.iterdir()}  # the artifact's own modules
    return tuple(dict.fromkeys(n for n in names if n.split(".")[0] not in local))


@dataclass(frozen=True, slots=True)
class _Key:
    artifact: str
    python: str
    pythonpath: str | None
    env: tuple[tuple[str, str], ...]
    preload: tuple[str, ...]
    distributions: tuple[str, ...]

    def digest(self) -> str:
        fields = [
            self.artifact,
            self.python,
            self.pythonpath,
            self.env,
            self.preload,
            self.distributions,
        ]
        blob = json.dumps(fields).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class _Zygote:
    process: Process
    socket: Path
    alive_w: int
    """Our end of the pipe whose closing tells the zygote the server is gone."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    kept_at: float = 0.0


class Zygotes:
    def __init__(
        self, logs: Path, sandbox: Sandbox, reveal: Reveal | None, idle_s: float = IDLE_S
    ) -> None:
        """``logs`` holds each zygote's own output."""
        self._logs = logs
        self._sandbox = sandbox
        self._reveal = reveal
        self._idle_s = idle_s
        self._live: dict[_Key, _Zygote] = {}
        self._starting: set[_Key] = set()
        """Zygotes being started: replicas that start together (an entity's first ones) must
        not start one each, all binding one socket path while only one is known here."""

    async def keep(self, spec: ReplicaSpec) -> None:
        """Have a warm zygote ready for ``spec``'s next replica (an entity scaled to zero):
        start one if there is none, else reset its idle time now and then."""
        key = _key(spec)
        zygote = self._live.get(key)
        if zygote is None or not zygote.process.alive():
            await self._start(key, spec)
            return
        now = asyncio.get_running_loop().time()
        if now - zygote.kept_at < KEEP_EVERY_S or not zygote.socket.exists():
            return
        zygote.kept_at = now
        try:
            async with zygote.lock, asyncio.timeout(REQUEST_TIMEOUT_S):
                await asyncio.to_thread(_ask, zygote.socket, {"keep": True})
        except (OSError, ValueError, KeyError, TimeoutError) as exc:
            log.warning("zygote for %s did not answer (%s); it will be replaced", spec.python, exc)
            await self._drop(key, zygote)

    async def fork(self, replica_id: str, spec: ReplicaSpec, log_file: Path) -> Process | None:
        """A replica forked from this environment's zygote, or None when there is no warm
        zygote yet (one is then started, for the next replica)."""
        key = _key(spec)
        zygote = self._live.get(key)
        if zygote is None or not zygote.process.alive():
            await self._start(key, spec)
            return None
        if not zygote.socket.exists():
            return None  # still importing
        box = box_of(self._sandbox, spec)
        request: dict[str, object] = {
            "argv": runtime_args(spec, box.socket(replica_id)),
            "env": {**model_env(spec, self._sandbox, self._reveal), "REPLICA_ID": replica_id},
            "cwd": str(box.home),
        }
        try:
            async with zygote.lock, asyncio.timeout(REQUEST_TIMEOUT_S):
                answer = await asyncio.to_thread(_ask, zygote.socket, request, log_file)
                inner = int(answer["pid"])
        except (OSError, ValueError, KeyError, TimeoutError) as exc:
            log.warning("zygote for %s did not fork (%s); starting directly", spec.python, exc)
            await self._drop(key, zygote)
            return None
        found = host_pid(zygote.process.pid, inner)
        if found is None:
            log.warning("zygote for %s forked pid %s, which it no longer has", spec.python, inner)
            return None
        return Process(found, None)

    async def close(self) -> None:
        """Let go of the zygotes: each leaves at once when its replicas have stopped (the
        server stops them first), else when the last one does (a server killed or restarted
        leaves its replicas running, to be adopted)."""
        zygotes, self._live = list(self._live.values()), {}
        for zygote in zygotes:
            os.close(zygote.alive_w)
        await asyncio.gather(
            *(asyncio.wait_for(z.process.wait(), CLOSE_WAIT_S) for z in zygotes),
            return_exceptions=True,
        )

    async def _drop(self, key: _Key, zygote: _Zygote) -> None:
        self._live.pop(key, None)
        os.close(zygote.alive_w)
        await zygote.process.terminate(grace_s=2.0)

    async def _start(self, key: _Key, spec: ReplicaSpec) -> None:
        if key in self._starting:
            return
        self._starting.add(key)
        try:
            await self._start_one(key, spec)
        finally:
            self._starting.discard(key)

    async def _start_one(self, key: _Key, spec: ReplicaSpec) -> None:
        box = box_of(self._sandbox, spec)
        socket = box.root / f"z-{key.digest()[:12]}.sock"
        socket.unlink(missing_ok=True)
        alive_r, alive_w = os.pipe()
        command = [
            spec.python,
            "-m",
            "berth.runtime.zygote",
            "--socket",
            str(socket),
            "--preload",
            ",".join(key.preload),
            "--preload-distributions",
            ",".join(key.distributions),
            "--idle-seconds",
            str(self._idle_s),
            "--server-fd",
            str(alive_r),
        ]
        wrapped = self._sandbox.command(
            command, box, readable=model_view(spec), env=model_env(spec, self._sandbox, None)
        )
        self._logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            process = await start_in_session(
                wrapped, box.home, self._logs / f"{key.digest()}.log", keep_fds=(alive_r,)
            )
        except OSError as exc:
            log.warning("could not start a zygote for %s: %s", spec.python, exc)
            os.close(alive_w)
            return
        finally:
            os.close(alive_r)
        os.set_inheritable(alive_w, False)
        self._live[key] = _Zygote(process, socket, alive_w)


@functools.lru_cache(maxsize=256)
def _key(spec: ReplicaSpec) -> _Key:
    """Cached: an artifact never changes, and an entity scaled to zero asks every pass."""
    return _Key(
        spec.artifact,
        spec.python,
        spec.pythonpath,
        spec.env,
        preload_modules(Path(spec.artifact), spec.model_format),
        required_distributions(Path(spec.artifact)),
    )


def _ask(socket: Path, request: dict[str, object], log_file: Path | None = None) -> dict[str, Any]:
    """One request to a zygote; ``log_file`` (opened here) goes along as the replica's output."""
    with sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM) as conn:
        conn.settimeout(REQUEST_TIMEOUT_S)
        conn.connect(str(socket))
        line = json.dumps(request).encode() + b"\n"
        if log_file is None:
            conn.sendall(line)
        else:
            out = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                sockets.send_fds(conn, [line], [out])
            finally:
                os.close(out)
        answer = json.loads(conn.makefile("rb").readline())
    if not isinstance(answer, dict) or "error" in answer:
        raise ValueError(answer["error"] if isinstance(answer, dict) else repr(answer))
    return answer
