"""The ``ray`` backend: each replica a detached, named actor on a Ray cluster.

The actor (`ray_host.ReplicaHost`) runs berth's runtime sandboxed on its node, listening on
the node's address; the gateway forwards to that ``host:port`` directly, so neither Ray's
object store nor Ray Serve is on the request path. Actors live in one namespace, named by
replica id, and are detached: they outlive the server, and a restarted server adopts them by
listing the namespace. Ray places them (a CPU or the entity's GPUs each, spread across
nodes) and restarts one whose node is lost on another node (``max_restarts=-1``); meanwhile
the replica is STARTING without an address, so the routes leave it. A task per replica
long-polls its actor's state (``watch``).

This module is the only one of berth that imports ``ray``, and only once the backend
connects: ``import berth`` and a server on the local backend never load it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from berth.backends.base import ReplicaSpec, ReplicaState, ReplicaStatus
from berth.backends.local import Liveness
from berth.backends.process import Reveal, model_variables
from berth.backends.ray_host import HostPlace, NodeEnvironment, ReplicaHost, SandboxConfig
from berth.core.container_contract import replica_image

if TYPE_CHECKING:
    from ray.actor import ActorHandle

log = logging.getLogger(__name__)

WATCH_S = 10.0
"""How long one long poll of an actor's state may wait."""
LOST_RETRY_S = 0.5
STOP_GRACE_S = 15.0
MIB = 1024 * 1024
LOST = (
    "Its Ray actor is not running: waiting for a node with the resources it asks, or its node "
    "was lost and Ray is starting it again on one that is up."
)


@dataclass(frozen=True, slots=True)
class RayConfig:
    """Which cluster, which namespace, and what each replica's actor asks of a node."""

    address: str = "auto"
    namespace: str = "berth"
    replica_cpus: float = 1.0
    replica_memory_mb: int = 512
    """Memory each replica reserves on its node besides its weights (`ReplicaSpec.memory_mb`)."""
    placement_timeout_s: float = 300.0
    """How long a new replica's actor may wait for a node with what it asks before the replica
    fails (so does its update, and the config before it keeps serving)."""


def actor_resources(config: RayConfig, spec: ReplicaSpec) -> dict[str, float]:
    """What a replica's actor reserves on its node: Ray places it only where all of it is
    free, and runs no more actors on a node than its CPUs, GPUs and memory hold."""
    return {
        "num_cpus": config.replica_cpus,
        "num_gpus": spec.gpus,
        "memory": (config.replica_memory_mb + spec.memory_mb) * MIB,
    }


class ReplicaActor(ReplicaHost):
    """`ReplicaHost` as Ray runs it: it learns its node and GPUs from Ray."""

    def __init__(
        self,
        replica_id: str,
        spec: ReplicaSpec,
        variables: dict[str, str],
        config: SandboxConfig,
        liveness: Liveness,
        environment: NodeEnvironment,
    ) -> None:
        import ray

        place = HostPlace(
            ray.get_runtime_context().get_node_id(),
            ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
            tuple(str(g) for g in ray.get_gpu_ids()),
        )
        super().__init__(replica_id, spec, variables, config, place, liveness, environment)


class RayBackend:
    def __init__(
        self,
        config: RayConfig,
        sandbox: SandboxConfig,
        environment: NodeEnvironment,
        on_change: Callable[[], None] | None = None,
        reveal: Reveal | None = None,
        liveness: Liveness | None = None,
    ) -> None:
        """As `LocalBackend`'s: ``on_change`` wakes the controller, ``reveal`` resolves
        secret references as a replica starts. ``environment`` makes a replica's environment
        on its node (a module-level function: Ray ships it to the nodes by reference)."""
        self._config = config
        self._sandbox = sandbox
        self._environment = environment
        self._on_change = on_change
        self._reveal = reveal
        self._liveness = liveness or Liveness()
        self._ray: Any = None
        self._actors: dict[str, ActorHandle[ReplicaActor]] = {}
        self._status: dict[str, ReplicaStatus] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def describe(self) -> str:
        return (
            f"backend: ray at {self._config.address}, namespace {self._config.namespace}; "
            "replicas listen on their node's address (network shared, whatever "
            "BERTH_SANDBOX__NETWORK says)"
        )

    async def adopt(self) -> None:
        """Connect, then follow every replica actor a previous server left in the namespace,
        from the state it tells now: the routes of the pass that follows hold those ready."""
        await self._connect()
        ray = self._ray
        names = await asyncio.to_thread(ray.util.list_named_actors, all_namespaces=True)
        for found in names:
            if found["namespace"] != self._config.namespace:
                continue
            replica_id = found["name"]
            try:
                handle = ray.get_actor(replica_id, namespace=self._config.namespace)
                blob = await handle.specification.remote()
                told = await handle.watch.remote("", -1, 0.0)
            except (ValueError, ray.exceptions.RayActorError) as exc:
                log.warning("replica actor %s could not be adopted: %s", replica_id, exc)
                continue
            spec = ReplicaSpec(**{**blob, "env": tuple(map(tuple, blob["env"]))})
            log.info("adopting replica %s (Ray actor)", replica_id)
            self._follow(replica_id, spec, handle)
            self._mirror(replica_id, told)

    async def start(self, replica_id: str, spec: ReplicaSpec) -> None:
        if replica_id in self._tasks:
            return
        if spec.container is not None and replica_image(spec.container) is not None:
            # Every format runs on a node (engines and containers through the runtime's relay)
            # but an image, which runs through the server host's podman.
            self._status[replica_id] = ReplicaStatus(
                replica_id,
                spec,
                ReplicaState.FAILED,
                message="The ray backend runs custom containers as processes, not images (an "
                "image runs through the server host's podman): serve this one with the local "
                "backend.",
            )
            return
        await self._connect()
        handle = await asyncio.to_thread(self._create, replica_id, spec)
        self._follow(replica_id, spec, handle)

    async def stop(self, replica_id: str) -> None:
        task = self._tasks.pop(replica_id, None)
        status = self._status.get(replica_id)
        if status is not None:
            self._status[replica_id] = replace(status, state=ReplicaState.STOPPING)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        handle = self._actors.pop(replica_id, None)
        if handle is not None and status is not None and status.pid is not None:
            # a runtime to drain; an actor not running (its node lost) answers nothing: it is
            # killed anyway
            with contextlib.suppress(self._ray.exceptions.RayError, TimeoutError):
                await asyncio.wait_for(handle.stop.remote(STOP_GRACE_S), STOP_GRACE_S + 5)
        if handle is not None:
            await asyncio.to_thread(self._ray.kill, handle, no_restart=True)
        self._status.pop(replica_id, None)

    def replicas(self) -> list[ReplicaStatus]:
        return list(self._status.values())

    async def keep_warm(self, spec: ReplicaSpec) -> None:
        """Nothing: an actor's start is dominated by scheduling and the model's imports."""

    def logs(self, replica_id: str, max_bytes: int) -> str:
        """What the replica printed, read on its node (blocks up to a few seconds: called
        from the API's threadpool)."""
        handle = self._actors.get(replica_id)
        if handle is None:
            return ""
        try:
            text: str = self._ray.get(handle.logs.remote(max_bytes), timeout=5.0)
        except self._ray.exceptions.RayError as exc:
            return f"(its logs could not be read from its Ray node: {exc})"
        return text

    async def close(self) -> None:
        """Stop following; the replicas keep running on the cluster for the next server, and
        this one tells none of them (a follower's metrics and logs) until it adopts them."""
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._actors.clear()
        self._status.clear()

    async def _connect(self) -> None:
        if self._ray is not None:
            return
        import ray

        if not ray.is_initialized():
            await asyncio.to_thread(
                ray.init,
                address=self._config.address,
                namespace=self._config.namespace,
                log_to_driver=False,
            )
        self._ray = ray

    def _create(self, replica_id: str, spec: ReplicaSpec) -> ActorHandle[ReplicaActor]:
        """The replica's actor, or the one already running under its name."""
        ray = self._ray
        actor = ray.remote(ReplicaActor).options(
            name=replica_id,
            namespace=self._config.namespace,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            max_concurrency=8,  # long polls, logs and stop at once, each on a thread
            **actor_resources(self._config, spec),
            scheduling_strategy="SPREAD",
        )
        variables = model_variables(spec, self._reveal)
        handle: ActorHandle[ReplicaActor] = actor.remote(
            replica_id, spec, variables, self._sandbox, self._liveness, self._environment
        )
        return handle

    def _follow(
        self, replica_id: str, spec: ReplicaSpec, handle: ActorHandle[ReplicaActor]
    ) -> None:
        self._actors[replica_id] = handle
        self._status[replica_id] = ReplicaStatus(replica_id, spec, ReplicaState.STARTING)
        self._tasks[replica_id] = asyncio.create_task(
            self._watch(replica_id, spec, handle), name=f"berth-ray-{replica_id}"
        )

    async def _watch(
        self, replica_id: str, spec: ReplicaSpec, handle: ActorHandle[ReplicaActor]
    ) -> None:
        """Mirror the actor's state until the replica is stopped; fail it if Ray does not
        place its actor in time."""
        errors = self._ray.exceptions
        loop = asyncio.get_running_loop()
        placed_by = loop.time() + self._config.placement_timeout_s
        incarnation, seen = "", -1
        waiting = True  # for the actor's first answer
        while True:
            wait_s = WATCH_S * 3
            if waiting:
                wait_s = max(0.1, min(wait_s, placed_by - loop.time()))
            try:
                async with asyncio.timeout(wait_s):
                    # A plain future, not the ObjectRef in ``asyncio.wait_for``: on Python 3.11
                    # that could lose the cancellation of ``close``, and this poll went on.
                    found: dict[str, Any] = await asyncio.wrap_future(
                        handle.watch.remote(incarnation, seen, WATCH_S).future()
                    )
            except (errors.RayActorError, TimeoutError) as exc:
                if not await self._still_named(replica_id):
                    log.warning("replica actor %s is gone: %s", replica_id, exc)
                    self._status.pop(replica_id, None)
                    self._actors.pop(replica_id, None)
                    self._tasks.pop(replica_id, None)
                    self._changed()
                    return
                if waiting and loop.time() >= placed_by:
                    waiting = False
                    self._set(replica_id, state=ReplicaState.FAILED, message=self._unplaced(spec))
                elif self._status[replica_id].state is not ReplicaState.FAILED:
                    self._set(replica_id, state=ReplicaState.STARTING, address=None, message=LOST)
                incarnation, seen = "", -1
                await asyncio.sleep(LOST_RETRY_S)
                continue
            incarnation, seen = found["incarnation"], found["version"]
            waiting = False
            self._mirror(replica_id, found)

    def _mirror(self, replica_id: str, found: dict[str, Any]) -> None:
        """The replica's status as its actor told it (``watch``)."""
        self._set(
            replica_id,
            state=ReplicaState(found["state"]),
            address=found["address"],
            pid=found["pid"],
            restarts=found["restarts"],
            message=found["message"],
        )

    def _unplaced(self, spec: ReplicaSpec) -> str:
        asked = actor_resources(self._config, spec)
        gpus = f", {spec.gpus} GPU(s)" if spec.gpus else ""
        return (
            f"Ray placed no actor for it within {self._config.placement_timeout_s:.0f}s: no node "
            f"of the cluster has {asked['num_cpus']:g} CPU(s){gpus} and "
            f"{asked['memory'] // MIB} MiB of memory free."
        )

    async def _still_named(self, replica_id: str) -> bool:
        """Whether Ray still holds an actor of that name (restarting, perhaps)."""
        try:
            await asyncio.to_thread(
                self._ray.get_actor, replica_id, namespace=self._config.namespace
            )
        except ValueError:
            return False
        return True

    def _set(self, replica_id: str, **changes: Any) -> None:
        status = self._status.get(replica_id)
        if status is None:
            return
        updated = replace(status, **changes)
        self._status[replica_id] = updated
        if updated.state != status.state:
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
