"""The ``local`` backend: each replica a sandboxed child process in its own process group.

Per replica, ``<root>/<replica_id>/`` holds ``replica.log`` (stdout and stderr) and
``state.json`` (pid, its start time, and spec), so a restarted server re-adopts replicas that
still run and kills none by mistake; the replica itself listens on a Unix socket in its
sandbox box (`berth.sandbox`). A supervisor task per replica starts the process
(forked from a warm zygote when its model version has one), waits for its health check, then
keeps probing it: a replica that dies, or stops answering for ``failure_threshold`` probes in
a row (hung, not dead), is killed and restarted at once, later crashes with backoff. A custom
container's replica answers health checks on a socket of its own (`probe_socket`) with its
server's probes' verdict: one whose health probe fails leaves the routes (STARTING, the
message says why) and comes back when it passes again; one of an image has its container
removed on stop (`berth.runtime.image`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import httpx

from berth.backends.base import ReplicaSpec, ReplicaState, ReplicaStatus
from berth.backends.gpus import GpuPool
from berth.backends.process import (
    Process,
    Reveal,
    box_of,
    health_of,
    read_tail,
    remove_container,
    spawn_image_replica,
    spawn_replica,
)
from berth.backends.zygotes import Zygotes
from berth.core.artifact_copies import ArtifactCopies
from berth.core.container_contract import probe_socket, read_replica_json, replica_image
from berth.core.errors import BerthError
from berth.core.images import NO_IMAGES, ImageRuntime
from berth.sandbox import Sandbox

log = logging.getLogger(__name__)

CRASHES_BEFORE_FAILED = 3
STARTUP_TIMEOUT_S = 300.0
PROBE_EVERY_S = 0.05
STARTUP_MARGIN_S = 10.0
"""Beyond a container's ``deployment_timeout``: its replica says first why it did not start."""
UNHEALTHY = "unhealthy: "


@dataclass(frozen=True, slots=True)
class Liveness:
    """How a READY replica is watched: a health probe every ``period_s``, each allowed
    ``timeout_s``; ``failure_threshold`` misses in a row and it is replaced."""

    period_s: float = 2.0
    timeout_s: float = 2.0
    failure_threshold: int = 3


class LocalBackend:
    def __init__(
        self,
        root: Path,
        sandbox: Sandbox,
        on_change: Callable[[], None] | None = None,
        reveal: Reveal | None = None,
        zygotes: Zygotes | None = None,
        liveness: Liveness | None = None,
        gpus: tuple[str, ...] = (),
        images: ImageRuntime | None = None,
        copies: ArtifactCopies | None = None,
    ) -> None:
        """``on_change`` is called whenever a replica changes state (e.g. to wake the
        controller, so a replica that became ready is routed to at once); ``reveal`` resolves
        secret references in environment variables as a replica starts; ``images`` runs
        container versions' images (none: they fail to start, saying so); ``copies`` keeps
        local copies of artifacts kept at a URL (by default under ``root``)."""
        self._root = root
        self._sandbox = sandbox
        self._on_change = on_change
        self._reveal = reveal
        self._zygotes = zygotes
        self._liveness = liveness or Liveness()
        self._gpus = GpuPool(gpus)
        self._images = images or NO_IMAGES
        self._copies = copies or ArtifactCopies(root / "artifact-copies")
        self._status: dict[str, ReplicaStatus] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._procs: dict[str, Process] = {}
        self._probes: dict[str, httpx.AsyncClient] = {}

    async def adopt(self) -> None:
        """Take over replicas a previous server left running; remove traces of dead ones."""
        self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for state_file in self._root.glob("*/state.json"):
            replica_id = state_file.parent.name
            try:
                state = json.loads(state_file.read_text())
                spec = ReplicaSpec(
                    **{**state["spec"], "env": tuple(map(tuple, state["spec"]["env"]))}
                )
                proc = Process.existing(int(state["pid"]), int(state["started"]))
            except (ValueError, KeyError, TypeError):
                proc = None
            if proc is None:
                shutil.rmtree(state_file.parent, ignore_errors=True)
                continue
            log.info("adopting replica %s (pid %s)", replica_id, proc.pid)
            self._gpus.hold(replica_id, tuple(state.get("gpus", ())))
            self._procs[replica_id] = proc
            self._status[replica_id] = ReplicaStatus(
                replica_id, spec, ReplicaState.STARTING, pid=proc.pid
            )
            self._tasks[replica_id] = asyncio.create_task(self._supervise(replica_id, spec, proc))

    async def start(self, replica_id: str, spec: ReplicaSpec) -> None:
        if replica_id in self._tasks:
            return
        self._status[replica_id] = ReplicaStatus(replica_id, spec, ReplicaState.STARTING)
        self._tasks[replica_id] = asyncio.create_task(self._supervise(replica_id, spec, None))

    async def stop(self, replica_id: str) -> None:
        task = self._tasks.pop(replica_id, None)
        status = self._status.get(replica_id)
        if status is not None:
            self._status[replica_id] = replace(status, state=ReplicaState.STOPPING)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        proc = self._procs.pop(replica_id, None)
        if proc is not None:
            await proc.terminate()
        status = self._status.pop(replica_id, None)
        if status is not None and _image(status.spec) and self._images.command:
            await remove_container(self._images, status.spec, self._sandbox, replica_id)
        self._gpus.release(replica_id)
        shutil.rmtree(self._root / replica_id, ignore_errors=True)
        if status is not None:
            self._socket(replica_id, status.spec).unlink(missing_ok=True)
            self._health_socket(replica_id, status.spec).unlink(missing_ok=True)
            probe = self._probes.pop(f"unix:{self._health_socket(replica_id, status.spec)}", None)
            if probe is not None:
                await probe.aclose()

    def replicas(self) -> list[ReplicaStatus]:
        return list(self._status.values())

    async def keep_warm(self, spec: ReplicaSpec) -> None:
        """A warm zygote for ``spec``'s environment, so a replica forks in a fraction of a
        second when a request comes."""
        if self._zygotes is not None and spec.container is None:
            await asyncio.to_thread(self._copies.local, spec.artifact)
            await self._zygotes.keep(self._here(spec))

    def logs(self, replica_id: str, max_bytes: int) -> str:
        return read_tail(self._root / replica_id / "replica.log", max_bytes)

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(rid) for rid in list(self._tasks)))
        if self._zygotes is not None:
            await self._zygotes.close()
        probes, self._probes = list(self._probes.values()), {}
        for probe in probes:
            await probe.aclose()

    async def _supervise(self, replica_id: str, spec: ReplicaSpec, proc: Process | None) -> None:
        """Keep one replica running: start, wait for ready, watch, restart."""
        folder = self._root / replica_id
        crashes = 0
        restarts = 0
        while True:
            if proc is None:
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._socket(replica_id, spec).unlink(missing_ok=True)
                try:
                    proc = await self._spawn_whole(replica_id, spec, folder)
                except (BerthError, OSError) as exc:  # e.g. a referenced secret is gone
                    message = exc.message if isinstance(exc, BerthError) else str(exc)
                    self._set(replica_id, state=ReplicaState.FAILED, message=message)
                    return
                self._procs[replica_id] = proc
                state = {
                    "pid": proc.pid,
                    "started": proc.started,
                    "address": self._address(replica_id, spec),
                    "spec": asdict(spec),
                    "gpus": list(self._gpus.take(replica_id, spec.gpus)),
                }
                (folder / "state.json").write_text(json.dumps(state))
            self._set(replica_id, state=ReplicaState.STARTING, pid=proc.pid, restarts=restarts)
            outcome = await self._until_ready(replica_id, spec, proc)
            if outcome == "failed":
                await proc.terminate()
                return
            if outcome == "ready":
                crashes = 0
                if await self._watch(replica_id, spec, proc) == "hung":
                    proc.kill()
                    await proc.wait()
            crashes += 1
            restarts += 1
            tail = read_tail(folder / "replica.log", 1500)
            if crashes >= CRASHES_BEFORE_FAILED:
                self._set(
                    replica_id,
                    state=ReplicaState.FAILED,
                    message=f"Replica exited {crashes} times before becoming ready "
                    f"(last exit code {proc.returncode}). Last output:\n{tail}",
                )
                return
            log.warning("replica %s exited (code %s); restarting", replica_id, proc.returncode)
            self._set(replica_id, state=ReplicaState.STARTING, address=None, message="restarting")
            if crashes > 1:  # a replica that served restarts at once; a crash loop backs off
                await asyncio.sleep(min(0.5 * 2 ** (crashes - 1), 10.0))
            proc = None

    async def _spawn_whole(self, replica_id: str, spec: ReplicaSpec, folder: Path) -> Process:
        """Start the replica; a stop that comes meanwhile waits for the start to finish and
        then stops what it started, so no process outlives its supervisor."""
        spawning = asyncio.ensure_future(self._spawn(replica_id, spec, folder))
        try:
            return await asyncio.shield(spawning)
        except asyncio.CancelledError:
            with contextlib.suppress(BerthError, OSError):
                await (await spawning).terminate(grace_s=2.0)
            raise

    async def _spawn(self, replica_id: str, spec: ReplicaSpec, folder: Path) -> Process:
        await asyncio.to_thread(self._copies.local, spec.artifact)
        spec = self._here(spec)
        log_file = folder / "replica.log"
        if _image(spec):
            return await spawn_image_replica(
                replica_id, spec, self._sandbox, log_file, self._images, self._reveal
            )
        gpus = self._gpus.take(replica_id, spec.gpus)
        # CUDA does not survive a fork; a container's server is a process of its own anyway
        if self._zygotes is not None and not gpus and spec.container is None:
            forked = await self._zygotes.fork(replica_id, spec, log_file)
            if forked is not None:
                return forked
        return await spawn_replica(replica_id, spec, self._sandbox, log_file, self._reveal, gpus)

    async def _until_ready(self, replica_id: str, spec: ReplicaSpec, proc: Process) -> str:
        """'ready', 'failed' (the model failed to load) or 'exited'."""
        loop = asyncio.get_running_loop()
        timeout_s = startup_timeout(spec)
        deadline = loop.time() + timeout_s
        address = self._address(replica_id, spec)
        socket = self._socket(replica_id, spec)
        health_socket = self._health_socket(replica_id, spec)
        while loop.time() < deadline:
            if not proc.alive():
                return "exited"
            if health_socket.exists():
                health = await self._probe(f"unix:{health_socket}", 2.0)
                if health is not None and health[0] == 200 and socket.exists():
                    self._set(replica_id, state=ReplicaState.READY, address=address, message="")
                    return "ready"
                if health is not None and health[1].get("status") == "failed":
                    self._set(
                        replica_id, state=ReplicaState.FAILED, message=health[1].get("message", "")
                    )
                    return "failed"
            await asyncio.sleep(PROBE_EVERY_S)
        self._set(
            replica_id,
            state=ReplicaState.FAILED,
            message=f"Replica was not ready within {timeout_s:.0f}s.",
        )
        return "failed"

    async def _watch(self, replica_id: str, spec: ReplicaSpec, proc: Process) -> str:
        """Until the READY replica exits ('exited') or misses the health check
        ``failure_threshold`` times in a row ('hung')."""
        policy = self._liveness
        address = self._address(replica_id, spec)
        health_at = f"unix:{self._health_socket(replica_id, spec)}"
        exited = asyncio.ensure_future(proc.wait())
        misses = 0
        try:
            while True:
                done, _ = await asyncio.wait({exited}, timeout=policy.period_s)
                if done:
                    return "exited"
                health = await self._probe(health_at, policy.timeout_s)
                if spec.container is not None and health is not None:
                    misses = 0
                    self._route_by(replica_id, address, health)
                    continue
                misses = 0 if health is not None and health[0] == 200 else misses + 1
                if misses >= policy.failure_threshold:
                    log.warning(
                        "replica %s missed %d health checks in a row; replacing it",
                        replica_id,
                        misses,
                    )
                    self._set(
                        replica_id,
                        state=ReplicaState.STARTING,
                        address=None,
                        message=f"Not answering its health check ({misses} misses); replacing.",
                    )
                    return "hung"
        finally:
            exited.cancel()

    async def _probe(self, address: str, timeout_s: float) -> tuple[int, dict[str, str]] | None:
        client = self._probes.get(address)
        if client is None:
            transport = httpx.AsyncHTTPTransport(uds=address.removeprefix("unix:"))
            client = self._probes[address] = httpx.AsyncClient(transport=transport)
        return await health_of(client, "http://replica/health", timeout_s)

    def _route_by(self, replica_id: str, address: str, health: tuple[int, dict[str, str]]) -> None:
        """A container replica's health verdict: routed while it passes, not while it fails."""
        if health[0] == 200:
            self._set(replica_id, state=ReplicaState.READY, address=address, message="")
            return
        why = health[1].get("message") or health[1].get("status") or f"HTTP {health[0]}"
        if self._status[replica_id].message != UNHEALTHY + why:
            log.warning("replica %s is unhealthy: %s", replica_id, why)
        self._set(replica_id, state=ReplicaState.STARTING, address=None, message=UNHEALTHY + why)

    def _here(self, spec: ReplicaSpec) -> ReplicaSpec:
        """``spec`` as its processes see it: the artifact at its copy on this machine (the
        status and ``state.json`` keep the spec as the controller gave it)."""
        return replace(spec, artifact=str(self._copies.where(spec.artifact)))

    def _socket(self, replica_id: str, spec: ReplicaSpec) -> Path:
        return box_of(self._sandbox, self._here(spec)).socket(replica_id)

    def _health_socket(self, replica_id: str, spec: ReplicaSpec) -> Path:
        """Where the replica answers health checks: its own socket, or a container's
        probe socket."""
        socket = self._socket(replica_id, spec)
        return socket if spec.container is None else Path(probe_socket(str(socket)))

    def _address(self, replica_id: str, spec: ReplicaSpec) -> str:
        return f"unix:{self._socket(replica_id, spec)}"

    def _set(self, replica_id: str, **changes: object) -> None:
        status = self._status.get(replica_id)
        if status is None:
            return
        updated = replace(status, **changes)  # type: ignore[arg-type]
        self._status[replica_id] = updated
        if updated.state != status.state and self._on_change is not None:
            self._on_change()


def _image(spec: ReplicaSpec) -> bool:
    return spec.container is not None and replica_image(spec.container) is not None


def startup_timeout(spec: ReplicaSpec) -> float:
    """How long a replica may take to become ready: a container's ``deployment_timeout`` (and
    a margin) where that is longer than berth's own limit."""
    if spec.container is None:
        return STARTUP_TIMEOUT_S
    container_spec, _ = read_replica_json(spec.container)
    asked = float(container_spec.get("deployment_timeout") or 0.0)
    return max(STARTUP_TIMEOUT_S, asked + STARTUP_MARGIN_S)
