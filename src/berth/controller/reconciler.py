"""The control loop: read desired state, plan, act through the backend, publish routes.

Level-triggered: every pass starts from the store and the backend's view, so a missed event
or a crash costs one pass, not correctness. A failing pass is logged and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from berth.backends.base import Backend, ReplicaSpec, ReplicaState, ReplicaStatus
from berth.controller.autoscaler import Autoscaler, Policy, ScaleKey, Size
from berth.controller.environments import Environments, EnvReady
from berth.controller.events import transition_events
from berth.controller.load_board import LoadBoard
from berth.controller.planner import FailUpdate, Plan, Promote, SaveStates, Transition, plan
from berth.controller.targets import (
    ArtifactRef,
    ConfigTarget,
    EndpointStates,
    EndpointTarget,
    EntityTarget,
    Runtime,
    config_target,
    in_progress,
    route_policy,
    stored_states,
)
from berth.core.clock import Clock
from berth.core.dataplane import Snapshot, SnapshotBus
from berth.core.endpoint_config import EndpointConfigDoc, EntityState, ServedEntity, entities_of
from berth.core.load import LoadReport
from berth.core.permissions import Grant, ObjectType, keys_at_least
from berth.core.principal import Principal
from berth.core.states import DeploymentState
from berth.metrics import Metrics
from berth.sandbox import Sandbox
from berth.store import endpoints as endpoint_store
from berth.store import grants, rollouts
from berth.store import models as model_store
from berth.store import tokens as token_store
from berth.store.db import Database
from berth.store.endpoints import EndpointRecord

log = logging.getLogger(__name__)


class ReplicaCount(NamedTuple):
    ready: int
    desired: int


Drain = Callable[[str], Awaitable[None]]
Followers = Callable[[int], Awaitable[None]]
"""Returns once every gateway process holds this snapshot version (or gave up waiting)."""
Reveal = Callable[[str], str | None]
"""The value a ``{{secrets/scope/key}}`` reference names, or None for any other text."""


class Controller:
    def __init__(
        self,
        db: Database,
        backend: Backend,
        bus: SnapshotBus,
        clock: Clock,
        *,
        envs_root: Path,
        python: str,
        drain: Drain,
        reveal: Reveal,
        metrics: Metrics,
        load: LoadBoard | None = None,
        policy: Policy | None = None,
        followers: Followers | None = None,
        tick_s: float = 0.5,
        sandbox: Sandbox | None = None,
    ) -> None:
        """``python`` runs models that ask for no environment of their own (berth's own);
        ``load`` is the gateways' demand the autoscaler sizes entities by; ``followers``
        returns once gateways in other processes hold a snapshot version; ``sandbox``
        confines environment builds."""
        self._db = db
        self._backend = backend
        self._bus = bus
        self._clock = clock
        self._envs = Environments(envs_root, python, self.nudge, metrics, sandbox)
        self._metrics = metrics
        self._drain = drain
        self._reveal = reveal
        self._tick_s = tick_s
        self._followers = followers
        self._wake = asyncio.Event()
        self._artifacts: dict[tuple[str, str], ArtifactRef] = {}
        self._stopping: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self.load = load or LoadBoard()
        self._autoscaler = Autoscaler(policy or Policy())
        self._scale: dict[tuple[str, int, str], ReplicaCount] = {}

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="berth-controller")

    def nudge(self) -> None:
        """Reconcile now rather than at the next tick (a config was written)."""
        self._wake.set()

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for task in self._stopping.values():
            task.cancel()
        await self._envs.close()
        await self._backend.close()

    def logs(self, endpoint: str, served_entity: str, max_bytes: int = 64 * 1024) -> str | None:
        """The tail of what each replica of one served entity printed; None if it has none."""
        found = [
            r
            for r in self._backend.replicas()
            if r.spec.endpoint == endpoint and r.spec.served_entity == served_entity
        ]
        if not found:
            return None
        return "\n".join(
            f"==> replica {r.replica_id} ({r.state.value}) <==\n"
            + self._backend.logs(r.replica_id, max_bytes)
            for r in sorted(found, key=lambda r: r.replica_id)
        )

    async def _run(self) -> None:
        while True:
            try:
                await self.reconcile()
            except Exception:
                log.exception("reconcile pass failed; retrying on the next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick_s)
            self._wake.clear()

    def report_load(self, source: str, report: LoadReport) -> None:
        """A gateway process's demand; a request waiting for a replica wakes the loop."""
        self.load.post(source, report)
        if any(load.waiting for load in report.values()):
            self.nudge()

    def scale(self, endpoint: str) -> dict[tuple[int, str], ReplicaCount]:
        """(config version, served entity) → replicas ready and wanted, as of the last pass."""
        return {(v, e): c for (name, v, e), c in self._scale.items() if name == endpoint}

    async def reconcile(self) -> Plan:
        records, tokens, queriers = await asyncio.to_thread(self._read)
        targets = [
            t for t in (self._target(r, queriers.get(r.id, ())) for r in records) if t is not None
        ]
        targets = self._autoscale(targets)
        # A replica being retired is gone as far as planning goes; should it be wanted again
        # (an endpoint re-created under the same name), it restarts once the retiring is done.
        replicas = self._backend.replicas()
        observed = [r for r in replicas if r.replica_id not in self._stopping]
        self._count_replicas(replicas)
        self._count_scale(targets, observed)
        decided = plan(targets, observed)
        for replica_id, spec in decided.start:
            if replica_id not in self._stopping:
                await self._backend.start(replica_id, spec)
        for spec in _scaled_to_zero(targets):
            await self._backend.keep_warm(spec)
        # Routes first: once a client reads NOT_UPDATING, the gateway already serves the new
        # version. Should recording then lose a race, the next pass routes by the store again.
        self._publish(decided, tokens)
        if decided.transitions and self._followers is not None:
            await self._followers(self._bus.current.version)
        if decided.transitions:
            by_id = {r.id: r for r in records}
            await asyncio.to_thread(self._record, decided.transitions, by_id)
        for replica_id in decided.stop:
            if replica_id not in self._stopping:
                self._stopping[replica_id] = asyncio.create_task(self._retire(replica_id))
        return decided

    def _read(
        self,
    ) -> tuple[list[EndpointRecord], dict[str, Principal], dict[str, list[Grant]]]:
        """Endpoints, live tokens, and who may query each endpoint (by endpoint id)."""
        with self._db.transaction() as session:
            records = endpoint_store.list_endpoints(session)
            tokens = token_store.live_tokens(session, self._clock.now_ms())
            queriers = grants.all_grants(session, ObjectType.SERVING_ENDPOINT)
            for record in records:
                for entity in entities_of(record.config, record.pending_config):
                    self._remember_artifact(session, entity)
        return records, tokens, queriers

    def _remember_artifact(self, session: Any, entity: ServedEntity) -> None:
        key = entity.registered_model
        if key is None:
            return
        if key not in self._artifacts:
            version = model_store.get_version(session, key[0], int(key[1]))
            environment = version.details.get("environment") or {"hash": None}
            self._artifacts[key] = ArtifactRef(version.artifact_path, version.format, environment)

    def _target(self, record: EndpointRecord, granted: Iterable[Grant]) -> EndpointTarget | None:
        lookup = self._artifacts.__getitem__

        def build(doc: EndpointConfigDoc | None) -> ConfigTarget | None:
            if doc is None:
                return None
            return config_target(
                record.name, doc, lambda n, v: lookup((n, v)), self._runtime, self._external
            )

        try:
            return EndpointTarget(
                endpoint_id=record.id,
                name=record.name,
                current=build(record.config),
                pending=build(record.pending_config) if in_progress(record.config_update) else None,
                states=EndpointStates(
                    record.ready,
                    stored_states(record.config),
                    stored_states(record.pending_config)
                    if in_progress(record.config_update)
                    else {},
                ),
                policy=route_policy(
                    record, keys_at_least(ObjectType.SERVING_ENDPOINT, granted, "CAN_QUERY")
                ),
            )
        except KeyError:
            log.exception("endpoint %s refers to an unknown model version", record.name)
            return None

    def _external(self, block: Mapping[str, Any]) -> Mapping[str, Any]:
        """``block`` with each ``{{secrets/s/k}}`` credential swapped for its ``*_plaintext``
        value, which lives only in memory and in the admin-only data-plane channel."""
        resolved: dict[str, Any] = {}
        for key, value in block.items():
            if isinstance(value, Mapping):
                resolved[key] = self._external(value)
            elif isinstance(value, str) and (secret := self._reveal(value)) is not None:
                resolved[f"{key}_plaintext"] = secret
            else:
                resolved[key] = value
        return resolved

    def _runtime(self, artifact: ArtifactRef) -> Runtime:
        status = self._envs.status(artifact.environment, artifact.path)
        if isinstance(status, EnvReady):
            return Runtime(status.python, status.pythonpath)
        state = DeploymentState.FAILED if status.failed else DeploymentState.CREATING
        return Runtime(None, blocked=EntityState(state, status.message))

    def _record(
        self, transitions: tuple[Transition, ...], records: dict[str, EndpointRecord]
    ) -> None:
        now = self._clock.now_ms()
        with self._db.transaction() as session:
            for transition in transitions:
                record = records[transition.endpoint_id]
                if not self._write(session, transition, record, now):
                    continue
                for event_type, message, version in transition_events(transition, record):
                    endpoint_store.add_event(
                        session, record.id, event_type, message, now_ms=now, config_version=version
                    )

    @staticmethod
    def _write(session: Any, transition: Transition, record: EndpointRecord, now: int) -> bool:
        states = transition.states
        if isinstance(transition, Promote):
            assert record.pending_config is not None
            return rollouts.promote(
                session,
                record.id,
                record.updated_at,
                record.pending_config,
                states.current,
                states.ready,
                now,
            )
        if isinstance(transition, FailUpdate):
            assert record.pending_config is not None
            return rollouts.fail_pending(
                session,
                record.id,
                record.updated_at,
                record.pending_config,
                record.config,
                (states.current, states.pending),
                states.ready,
                now,
            )
        assert isinstance(transition, SaveStates)
        return rollouts.save_states(
            session,
            record.id,
            record.updated_at,
            record.config,
            record.pending_config,
            (states.current, states.pending),
            states.ready,
        )

    def _autoscale(self, targets: list[EndpointTarget]) -> list[EndpointTarget]:
        """Each entity's replica count from the autoscaler (one decision per spec a pass,
        shared by the current and pending configs when they run the same spec)."""
        load = self.load.read()
        sizes: dict[ScaleKey, Size] = {}

        def sized(endpoint: str, entity: EntityTarget) -> EntityTarget:
            if entity.spec is None:
                return entity
            key = (endpoint, entity.name, entity.spec.fingerprint())
            if key not in sizes:
                sizes[key] = self._autoscaler.size(
                    key, entity.scaling, entity.spec.max_concurrency, load.get(key[:2])
                )
            return replace(entity, replicas=sizes[key].replicas)

        def config(endpoint: str, target: ConfigTarget | None) -> ConfigTarget | None:
            if target is None:
                return None
            return replace(target, entities=tuple(sized(endpoint, e) for e in target.entities))

        resized = [
            replace(t, current=config(t.name, t.current), pending=config(t.name, t.pending))
            for t in targets
        ]
        self._autoscaler.retain(sizes)
        self._metrics.demand.clear()
        for (endpoint, entity, _), size in sizes.items():
            self._metrics.demand.labels(endpoint, entity).set(size.demand)
        return resized

    def _count_scale(self, targets: list[EndpointTarget], observed: list[ReplicaStatus]) -> None:
        """Replicas ready and wanted per entity of each config, for GET and metrics."""
        ready = Counter(r.spec for r in observed if r.state is ReplicaState.READY)
        scale: dict[tuple[str, int, str], ReplicaCount] = {}
        gauge = self._metrics.desired_replicas
        gauge.clear()
        for target in targets:
            for config in (target.current, target.pending):
                if config is None:
                    continue
                for entity in config.entities:
                    if entity.spec is not None:
                        count = ReplicaCount(ready[entity.spec], entity.replicas)
                        scale[(target.name, config.version, entity.name)] = count
            if target.current is not None:
                for entity in target.current.entities:
                    if entity.spec is not None:
                        gauge.labels(target.name, entity.name).set(entity.replicas)
        self._scale = scale

    def _count_replicas(self, replicas: Iterable[ReplicaStatus]) -> None:
        """``berth_replicas`` as the backend sees them now."""
        counts = Counter((r.spec.endpoint, r.spec.served_entity, r.state.value) for r in replicas)
        gauge = self._metrics.replicas
        gauge.clear()
        for labels, count in counts.items():
            gauge.labels(*labels).set(count)

    def _publish(self, decided: Plan, tokens: dict[str, Principal]) -> None:
        current = self._bus.current
        if dict(current.endpoints) != dict(decided.routes) or dict(current.tokens) != tokens:
            self._bus.publish(Snapshot(current.version + 1, decided.routes, tokens))

    async def _retire(self, replica_id: str) -> None:
        """Stop a replica nobody routes to any more, once its in-flight requests are done."""
        try:
            await self._drain(replica_id)
            await self._backend.stop(replica_id)
        finally:
            self._stopping.pop(replica_id, None)


def _scaled_to_zero(targets: Iterable[EndpointTarget]) -> set[ReplicaSpec]:
    """The specs of serving entities that run no replica now."""
    return {
        e.spec
        for t in targets
        if t.current is not None
        for e in t.current.entities
        if e.spec is not None and e.replicas == 0
    }
