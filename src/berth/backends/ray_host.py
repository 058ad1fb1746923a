"""One replica on a Ray node: the body of the ray backend's named actor.

The actor is berth's own code in a Ray worker process; model code never runs in it. It starts
berth's runtime on its node exactly as the local backend does (the same allow-listed
environment, bubblewrap view and uid, `berth.sandbox`), except that the runtime listens on TCP
at the node's address, since the gateway is on another machine. The runtime dies with the
actor (bubblewrap's ``--die-with-parent``), so an actor killed or a node lost leaves nothing
running. A supervisor restarts a runtime that exits or stops answering (a crash loop fails
the replica), as the local backend's does; ``watch`` long-polls its state.

Nothing of the server's machine is used on the node: the artifact is read from the artifact
store (copied once onto the node), and the model's environment is built on the node (or found
in its cache there), by the function the server hands down (`NodeEnvironment`), since
``berth.backends`` does not import ``berth.envs``.

Ray is not imported here: what the actor needs of it (its node's address, its GPUs) is
handed to it (`HostPlace`) by the code that runs it (`berth.backends.ray`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from berth.backends.base import ReplicaSpec, ReplicaState
from berth.backends.local import CRASHES_BEFORE_FAILED, PROBE_EVERY_S, Liveness, startup_timeout
from berth.backends.process import (
    Process,
    box_of,
    health_of,
    listening_args,
    model_env,
    model_view,
    read_tail,
    start_in_session,
)
from berth.core.artifact_copies import ArtifactCopies
from berth.core.container_contract import effective_routes, read_replica_json
from berth.core.errors import BerthError
from berth.core.gpus import device_files
from berth.sandbox import Sandbox

NodeEnvironment = Callable[[str | None, Path, Path, Sandbox], tuple[str, str]]
"""``(spec.environment, the node's environments folder, the artifact's folder on the node, the
node's sandbox) -> (python, PYTHONPATH)`` for the replica on this node, built there if need
be (`berth.envs.replica_environment`); raises a `BerthError` saying why it cannot be built."""


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """How the node sandboxes model code: the server's ``BERTH_SANDBOX__*`` settings, but the
    network is always shared (the runtime listens on the node's address)."""

    work_dir: str
    mode: str = "auto"
    run_as: str | None = None
    uid_range: tuple[int, int] = (61184, 4096)
    pass_env: tuple[str, ...] = ()

    def sandbox(self) -> Sandbox:
        return Sandbox(
            Path(self.work_dir) / "boxes",
            mode=self.mode,
            run_as=self.run_as,
            uid_range=self.uid_range,
            network=True,
            pass_env=self.pass_env,
        )


@dataclass(frozen=True, slots=True)
class HostPlace:
    """Where the actor runs, as Ray tells it: its node and the GPUs it holds."""

    node_id: str
    node_ip: str
    gpus: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HostStatus:
    """What ``watch`` answers: the replica's state, its ``host:port`` once ready, and a
    version that grows at each change."""

    incarnation: str
    """New at each start of the actor (Ray restarts it on another node when its node is lost)."""
    version: int
    state: str
    node_id: str
    address: str | None = None
    pid: int | None = None
    restarts: int = 0
    message: str = ""


class ReplicaHost:
    """The actor's methods. They are all plain functions, which Ray runs on the actor's
    threads, so a long poll never holds up ``logs`` or ``stop`` (one coroutine method would
    make Ray run every method on one event loop, one call at a time); the supervisor runs on
    an event loop of its own thread."""

    def __init__(
        self,
        replica_id: str,
        spec: ReplicaSpec,
        variables: dict[str, str],
        config: SandboxConfig,
        place: HostPlace,
        liveness: Liveness,
        environment: NodeEnvironment,
    ) -> None:
        """``variables`` are the entity's environment variables, secrets revealed."""
        self.spec = spec
        self._supervisor = Supervisor(
            replica_id, spec, variables, config, place, liveness, environment
        )
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._supervisor.run(), self._loop)

    def watch(self, incarnation: str, seen: int, timeout_s: float) -> dict[str, Any]:
        """The status once it is newer than version ``seen`` of ``incarnation``, or as it is
        after ``timeout_s``."""
        return asdict(self._supervisor.watch(incarnation, seen, timeout_s))

    def specification(self) -> dict[str, Any]:
        """The spec it was started with (secret references, not their values): a restarted
        server adopts the replica by it."""
        return asdict(self.spec)

    def logs(self, max_bytes: int) -> str:
        return self._supervisor.logs(max_bytes)

    def stop(self, grace_s: float) -> None:
        """Stop the supervisor, then the runtime (it drains in-flight requests first)."""
        asyncio.run_coroutine_threadsafe(self._supervisor.stop(grace_s), self._loop).result()


class Supervisor:
    """Keeps one runtime running on this node: start, wait for ready, watch, restart."""

    def __init__(
        self,
        replica_id: str,
        spec: ReplicaSpec,
        variables: dict[str, str],
        config: SandboxConfig,
        place: HostPlace,
        liveness: Liveness,
        environment: NodeEnvironment,
    ) -> None:
        self.replica_id = replica_id
        self.spec = spec
        self._variables = tuple(variables.items())
        self._copies = ArtifactCopies(Path(config.work_dir) / "artifacts")
        self._environment = environment
        self._envs = Path(config.work_dir) / "envs"
        self._place = place
        self._liveness = liveness
        self._health = "/health"
        if spec.container is not None:
            self._health = effective_routes(*read_replica_json(spec.container)).health
        self._sandbox = config.sandbox()
        self._folder = Path(config.work_dir) / "replicas" / _digest(replica_id)
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._changed = threading.Condition()
        self._status = HostStatus(uuid.uuid4().hex, 0, ReplicaState.STARTING.value, place.node_id)
        self._proc: Process | None = None
        self._running: asyncio.Task[None] | None = None

    def watch(self, incarnation: str, seen: int, timeout_s: float) -> HostStatus:
        with self._changed:
            self._changed.wait_for(
                lambda: self._status.incarnation != incarnation or self._status.version > seen,
                timeout_s,
            )
            return self._status

    def logs(self, max_bytes: int) -> str:
        return read_tail(self._folder / "replica.log", max_bytes)

    async def stop(self, grace_s: float) -> None:
        """Stop supervising, then the runtime (it drains first). A runtime being spawned
        meanwhile dies with the actor, which is killed next."""
        if self._running is not None:
            self._running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._running
        if self._proc is not None:
            await self._proc.terminate(grace_s)
        self._set(state=ReplicaState.STOPPING.value, address=None)

    async def run(self) -> None:
        self._running = asyncio.current_task()
        crashes = 0
        restarts = 0
        spec = await self._prepare()
        if spec is None:
            return
        async with httpx.AsyncClient(trust_env=False) as probes:  # no proxy to a node
            while True:
                try:
                    proc, port_file = await self._spawn(spec)
                except OSError as exc:
                    self._set(state=ReplicaState.FAILED.value, message=str(exc))
                    return
                self._proc = proc
                self._set(state=ReplicaState.STARTING.value, pid=proc.pid, restarts=restarts)
                outcome = await self._until_ready(proc, port_file, probes)
                if outcome == "failed":
                    await proc.terminate()
                    return
                if outcome == "ready":
                    crashes = 0
                    if await self._watch(proc, probes) == "hung":
                        proc.kill()
                        await proc.wait()
                crashes += 1
                restarts += 1
                if crashes >= CRASHES_BEFORE_FAILED:
                    tail = read_tail(self._folder / "replica.log", 1500)
                    self._set(
                        state=ReplicaState.FAILED.value,
                        address=None,
                        message=f"Replica exited {crashes} times before becoming ready "
                        f"(last exit code {proc.returncode}). Last output:\n{tail}",
                    )
                    return
                self._set(state=ReplicaState.STARTING.value, address=None, message="restarting")
                if crashes > 1:
                    await asyncio.sleep(min(0.5 * 2 ** (crashes - 1), 10.0))

    async def _prepare(self) -> ReplicaSpec | None:
        """The spec as this node runs it: the artifact's copy here, the interpreter and the
        runtime's copy of the environment built (or found) here, the entity's variables; None
        once the replica has failed, saying why, when either cannot be had. Runs before the
        runtime's start, so the startup timeout counts from after a build."""
        spec = self.spec
        where = f"node {self._place.node_id}"
        building = spec.environment is not None
        try:
            artifact = await asyncio.to_thread(self._copies.local, spec.artifact)
            if building:
                self._set(message=f"Building its environment on {where}.")
            python, pythonpath = await asyncio.to_thread(
                self._environment, spec.environment, self._envs, artifact, self._sandbox
            )
        except BerthError as exc:
            self._set(state=ReplicaState.FAILED.value, message=f"On {where}: {exc.message}")
            return None
        except OSError as exc:  # e.g. the node's disk is full
            self._set(state=ReplicaState.FAILED.value, message=f"On {where}: {exc}")
            return None
        if building:
            self._set(message="")
        return replace(
            spec,
            artifact=str(artifact),
            python=python,
            pythonpath=pythonpath,
            env=self._variables,
        )

    async def _spawn(self, spec: ReplicaSpec) -> tuple[Process, Path]:
        box = box_of(self._sandbox, spec)
        port_file = box.root / f"{_digest(self.replica_id)}.port"
        port_file.unlink(missing_ok=True)
        listen = ["--host", self._place.node_ip, "--port", "0", "--port-file", str(port_file)]
        argv = [spec.python, "-m", "berth.runtime", *listening_args(spec, listen)]
        env = {**model_env(spec, self._sandbox, None), "REPLICA_ID": self.replica_id}
        if spec.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self._place.gpus)
        wrapped = self._sandbox.command(
            argv,
            box,
            readable=model_view(spec),
            env=env,
            devices=device_files(self._place.gpus),
            die_with_parent=True,
        )
        proc = await start_in_session(wrapped, box.home, self._folder / "replica.log")
        return proc, port_file

    async def _until_ready(self, proc: Process, port_file: Path, probes: httpx.AsyncClient) -> str:
        """'ready', 'failed' (the model failed to load, or too slowly) or 'exited'."""
        loop = asyncio.get_running_loop()
        timeout_s = startup_timeout(self.spec)
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if not proc.alive():
                return "exited"
            address = _read_address(self._place.node_ip, port_file)
            health = None if address is None else await self._probe(probes, address, 2.0)
            if health is not None and health[0] == 200:
                self._set(state=ReplicaState.READY.value, address=address, message="")
                return "ready"
            if health is not None and health[1].get("status") == "failed":
                self._set(state=ReplicaState.FAILED.value, message=health[1].get("message", ""))
                return "failed"
            await asyncio.sleep(PROBE_EVERY_S)
        self._set(
            state=ReplicaState.FAILED.value,
            message=f"Replica was not ready within {timeout_s:.0f}s.",
        )
        return "failed"

    async def _watch(self, proc: Process, probes: httpx.AsyncClient) -> str:
        """Until the READY runtime exits ('exited') or misses ``failure_threshold`` health
        checks in a row ('hung')."""
        policy = self._liveness
        address = self._status.address or ""
        exited = asyncio.ensure_future(proc.wait())
        misses = 0
        try:
            while True:
                done, _ = await asyncio.wait({exited}, timeout=policy.period_s)
                if done:
                    return "exited"
                health = await self._probe(probes, address, policy.timeout_s)
                misses = 0 if health is not None and health[0] == 200 else misses + 1
                if misses >= policy.failure_threshold:
                    self._set(
                        state=ReplicaState.STARTING.value,
                        address=None,
                        message=f"Not answering its health check ({misses} misses); replacing.",
                    )
                    return "hung"
        finally:
            exited.cancel()

    async def _probe(
        self, client: httpx.AsyncClient, address: str, timeout_s: float
    ) -> tuple[int, dict[str, str]] | None:
        """The replica's health: the runtime's ``/health``, or a custom container's own health
        route (its relay answers only once the container's probes passed)."""
        return await health_of(client, f"http://{address}{self._health}", timeout_s)

    def _set(self, **changes: Any) -> None:
        with self._changed:
            self._status = replace(self._status, version=self._status.version + 1, **changes)
            self._changed.notify_all()


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:12]


def _read_address(host: str, port_file: Path) -> str | None:
    try:
        return f"{host}:{int(port_file.read_text())}"
    except (OSError, ValueError):
        return None
