"""Warm zygotes: one per model environment, forking replicas that skip the heavy imports.

The first replica of an environment starts the usual way, and a zygote for that
environment starts beside it (``python -m berth.runtime.zygote``, importing what the model
imports: MLflow's pyfunc and the flavor's module, or a score.py's top-level imports). Later
replicas with the same interpreter, ``PYTHONPATH``, environment variables and imports are
forked from it. A zygote that is missing, still importing or gone only means the slow path;
it exits by itself after ``idle_s`` without a request, and with the server.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from berth.backends.base import ReplicaSpec
from berth.backends.process import Process, Reveal, model_env, runtime_args, start_in_session

log = logging.getLogger(__name__)

IDLE_S = 15 * 60.0
KEEP_EVERY_S = 60.0
REQUEST_TIMEOUT_S = 10.0
MAX_SOCKET_PATH = 100
"""Unix socket paths are limited to 108 bytes; past this berth does without zygotes."""


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
    python: str
    pythonpath: str | None
    env: tuple[tuple[str, str], ...]
    preload: tuple[str, ...]
    distributions: tuple[str, ...]

    def digest(self) -> str:
        fields = [self.python, self.pythonpath, self.env, self.preload, self.distributions]
        blob = json.dumps(fields).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class _Zygote:
    process: Process
    socket: Path
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    kept_at: float = 0.0


class Zygotes:
    def __init__(self, root: Path, reveal: Reveal | None, idle_s: float = IDLE_S) -> None:
        self._root = root
        self._reveal = reveal
        self._idle_s = idle_s
        self._live: dict[_Key, _Zygote] = {}

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
                await _ask(zygote.socket, {"keep": True})
        except (OSError, ValueError, KeyError, TimeoutError) as exc:
            log.warning("zygote for %s did not answer (%s); it will be replaced", spec.python, exc)
            self._live.pop(key, None)
            await zygote.process.terminate(grace_s=2.0)

    async def fork(self, replica_id: str, spec: ReplicaSpec, folder: Path) -> Process | None:
        """A replica forked from this environment's zygote, or None when there is no warm
        zygote yet (one is then started, for the next replica)."""
        key = _key(spec)
        zygote = self._live.get(key)
        if zygote is None or not zygote.process.alive():
            await self._start(key, spec)
            return None
        if not zygote.socket.exists():
            return None  # still importing
        request: dict[str, object] = {
            "argv": runtime_args(spec, folder),
            "env": {**model_env(spec, self._reveal), "BERTH_REPLICA_ID": replica_id},
            "cwd": str(folder),
            "log": str(folder / "replica.log"),
        }
        try:
            async with zygote.lock, asyncio.timeout(REQUEST_TIMEOUT_S):
                pid = int((await _ask(zygote.socket, request))["pid"])
        except (OSError, ValueError, KeyError, TimeoutError) as exc:
            log.warning("zygote for %s did not fork (%s); starting directly", spec.python, exc)
            self._live.pop(key, None)
            await zygote.process.terminate(grace_s=2.0)
            return None
        return Process(pid, None)

    async def close(self) -> None:
        zygotes, self._live = list(self._live.values()), {}
        await asyncio.gather(*(z.process.terminate(grace_s=2.0) for z in zygotes))

    async def _start(self, key: _Key, spec: ReplicaSpec) -> None:
        folder = self._root / key.digest()
        socket = folder / "zygote.sock"
        if len(str(socket)) > MAX_SOCKET_PATH:
            return
        folder.mkdir(parents=True, exist_ok=True)
        socket.unlink(missing_ok=True)
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
        ]
        env = model_env(spec, self._reveal)
        try:
            process = await start_in_session(command, env, folder, folder / "zygote.log")
        except OSError as exc:
            log.warning("could not start a zygote for %s: %s", spec.python, exc)
            return
        self._live[key] = _Zygote(process, socket)


@functools.lru_cache(maxsize=256)
def _key(spec: ReplicaSpec) -> _Key:
    """Cached: an artifact never changes, and an entity scaled to zero asks every pass."""
    return _Key(
        spec.python,
        spec.pythonpath,
        spec.env,
        preload_modules(Path(spec.artifact), spec.model_format),
        required_distributions(Path(spec.artifact)),
    )


async def _ask(socket: Path, request: dict[str, object]) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(socket))
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        answer = json.loads(await reader.readline())
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if not isinstance(answer, dict) or "error" in answer:
        raise ValueError(answer["error"] if isinstance(answer, dict) else repr(answer))
    return answer
