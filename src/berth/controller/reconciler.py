"""The control loop: read desired state, plan, act through the backend, publish routes.

Level-triggered: every pass starts from the store and the backend's view, so a missed event
or a crash costs one pass, not correctness. A pass runs in stages (``berth.controller.stages``),
each timed and guarded apart: one that fails costs only what needs its result, and retiring
replicas nobody routes to runs whatever failed before it. Nothing inside a pass waits for a
condition: what must be waited for (gateways catching up, replicas draining) is waited for by
a task beside the loop, whose outcome a later pass observes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, NamedTuple

from berth.backends.base import Backend, ReplicaSpec, ReplicaStatus
from berth.controller.autoscaler import Autoscaler, Policy
from berth.controller.calibration import Calibrations
from berth.controller.catch_up import CatchUp, Followers
from berth.controller.environments import Environments, EnvReady
from berth.controller.events import Event, ReplicaHealth, transition_events
from berth.controller.load_board import LoadBoard
from berth.controller.planner import FailUpdate, Plan, Promote, SaveStates, Transition, plan
from berth.controller.replica_history import ReplicaHistory, entity_counts
from berth.controller.retirements import Drain as Drain
from berth.controller.retirements import Retirements
from berth.controller.sizing import ReplicaCount, Sizing
from berth.controller.stages import Stages
from berth.controller.targets import (
    ArtifactRef,
    ConfigTarget,
    EndpointStates,
    EndpointTarget,
    Runtime,
    config_target,
    in_progress,
    on_nodes,
    route_policy,
    stored_states,
)
from berth.core.artifact_copies import as_uri
from berth.core.clock import Clock
from berth.core.dataplane import CALIBRATED_FORMATS, EndpointRoute, Snapshot, SnapshotBus
from berth.core.endpoint_config import EndpointConfigDoc, EntityState, ServedEntity, entities_of
from berth.core.errors import LeaseLost
from berth.core.load import LoadReport
from berth.core.permissions import Grant, ObjectType, keys_at_least
from berth.core.principal import Principal
from berth.core.states import DeploymentState
from berth.core.throughput import CalibrationState, asks_throughput
from berth.metrics import Metrics
from berth.store import endpoints as endpoint_store
from berth.store import grants, rollouts
from berth.store import models as model_store
from berth.store import tokens as token_store
from berth.store.endpoints import EndpointRecord
from berth.store.fencing import Transactions

log = logging.getLogger(__name__)


class _Read(NamedTuple):
    records: list[EndpointRecord]
    tokens: dict[str, Principal]
    queriers: dict[str, list[Grant]]
    """Who may query each endpoint, by endpoint id."""
    unreadable: frozenset[str]
    """Endpoints whose model versions could not be read: held as they are this pass."""
    chunks: dict[tuple[str, str], int]
    """The throughput chunks of the open LLM versions served with provisioned throughput,
    by (model, version), as calibrated on this host (re-read each pass: a re-calibration
    moves them)."""


class _Desired(NamedTuple):
    targets: list[EndpointTarget]
    held: frozenset[str]
    """Endpoints whose target could not be built: their replicas and routes stay as they are
    this pass, never torn down for a failure that may pass."""


Reveal = Callable[[str], str | None]
"""The value a ``{{secrets/scope/key}}`` reference names, or None for any other text."""


class Controller:
    def __init__(
        self,
        db: Transactions,
        backend: Backend,
        bus: SnapshotBus,
        clock: Clock,
        *,
        environments: Environments,
        calibrations: Calibrations,
        drain: Drain,
        reveal: Reveal,
        metrics: Metrics,
        load: LoadBoard | None = None,
        policy: Policy | None = None,
        followers: Followers | None = None,
        tick_s: float = 0.5,
        envs_on_nodes: bool = False,
    ) -> None:
        """``environments`` builds what model versions run in, ``calibrations`` measures
        open LLMs' throughput chunks (both tell ``nudge`` when one is done); ``load`` is the
        gateways' demand the autoscaler sizes entities by; ``followers`` returns once
        gateways in other processes hold a snapshot version. With several servers, ``db`` is
        fenced (`berth.store.fencing`): once another server leads, every pass is refused.
        ``envs_on_nodes``: the backend's replicas run on machines that build their
        environments themselves (the ray backend): this server builds none, and their specs
        name environments rather than this server's paths (`targets.on_nodes`), so a leader
        whose home lies elsewhere adopts them as they are, at once."""
        self._db = db
        self._backend = backend
        self._bus = bus
        self._clock = clock
        self._envs = environments
        self.calibrations = calibrations
        self._metrics = metrics
        self._stages = Stages(metrics)
        self._retirements = Retirements(backend, drain, self._stages)
        self._health = ReplicaHealth()
        self._reveal = reveal
        self._tick_s = tick_s
        self._envs_on_nodes = envs_on_nodes
        self._catch_up = None if followers is None else CatchUp(followers, self._stages, self.nudge)
        self._wake = asyncio.Event()
        self._artifacts: dict[tuple[str, str], ArtifactRef] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self.load = load or LoadBoard()
        self._sizing = Sizing(Autoscaler(policy or Policy()), self.load, metrics)
        self._history = ReplicaHistory(db, clock)

    def start(self) -> None:
        self.calibrations.start()
        self._loop_task = asyncio.create_task(self._run(), name="berth-controller")

    async def lead(self) -> None:
        """Start controlling (this server acquired the lease): take over the replicas the
        backend still runs, reconcile once so routes and tokens are known, then loop."""
        await self._backend.adopt()
        await self.reconcile()
        self.start()

    async def stop(self) -> None:
        """Stop controlling (the lease is lost, or the server stops): the loop and the work
        beside it end, and the backend lets go of its replicas as on a shutdown: local ones
        stop, since the server that leads next starts its own."""
        if self._loop_task is not None:
            # gather, not a suppressed await: a cancellation of the caller must go through
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        await self._retirements.close()
        if self._catch_up is not None:
            await self._catch_up.close()
        await self._backend.close()

    async def drop_leftovers(self) -> None:
        """Let go of the replicas an earlier life of this server left running, when another
        server leads now and runs its own."""
        await self._backend.adopt()
        await self._backend.close()

    def nudge(self) -> None:
        """Reconcile now rather than at the next tick (a config was written)."""
        self._wake.set()

    async def close(self) -> None:
        await self.stop()
        await self.calibrations.close()
        await self._envs.close()

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
            except LeaseLost as exc:
                log.warning("the controller stops: %s", exc.message)
                return
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
        return self._sizing.scale(endpoint)

    @property
    def sizing(self) -> Sizing:
        """The replica counts of the last pass, which the leader shares with the others."""
        return self._sizing

    async def reconcile(self) -> Plan:
        """One pass; returns its plan (empty when a stage the plan needs failed)."""
        read: _Read | None = None
        with self._stages.run("read"):
            read = await asyncio.to_thread(self._read)
        desired = None if read is None else self._desire(read)
        decided = None if desired is None else self._plan(desired)
        if read is None or desired is None or decided is None:
            return Plan()
        await self._act(read, desired, decided)
        return decided

    def _desire(self, read: _Read) -> _Desired | None:
        """The target and autoscale stages; None when no target could be built at all."""
        desired: _Desired | None = None
        with self._stages.run("target"):
            desired = self._targets(read)
        if desired is None:
            return None
        targets = desired.targets
        with self._stages.run("autoscale") as sizing:
            targets = self._sizing.autoscale(targets)
        if sizing.failed:  # the counts the last pass wanted hold: no replica stops for it
            targets = self._sizing.as_before(targets)
        return _Desired(targets, desired.held)

    def _plan(self, desired: _Desired) -> Plan | None:
        decided: Plan | None = None
        with self._stages.run("plan"):
            replicas = self._backend.replicas()
            # A replica being retired is gone as far as planning goes; should it be wanted again
            # (an endpoint re-created under the same name), it restarts once the retiring is
            # done. A held endpoint's replicas are left as they are: neither started nor stopped.
            observed = [
                r
                for r in replicas
                if r.replica_id not in self._retirements and r.spec.endpoint not in desired.held
            ]
            decided = plan(desired.targets, observed)
            self._count_replicas(replicas)
            self._sizing.count(desired.targets, observed)
        return decided

    async def _act(self, read: _Read, desired: _Desired, decided: Plan) -> None:
        """The execute, publish, record, retire and history stages."""
        with self._stages.run("execute"):
            await self._execute(decided, desired.targets)
        # Routes first: once a client reads NOT_UPDATING, the gateway already serves the new
        # version. Should recording then lose a race, the next pass routes by the store again.
        with self._stages.run("publish") as publishing:
            self._publish(decided.routes, read.tokens, desired.held)
        replica_events = self._health.events(self._backend.replicas())
        if (decided.transitions or replica_events) and not publishing.failed:
            with self._stages.run("record"):
                # Recorded once every gateway routes by it; until then, a later pass records.
                version = self._bus.current.version
                if decided.transitions and (
                    self._catch_up is None or self._catch_up.holds(version)
                ):
                    by_id = {r.id: r for r in read.records}
                    await asyncio.to_thread(self._record, decided.transitions, by_id)
                if replica_events:
                    await asyncio.to_thread(self._record_replicas, replica_events, read.records)
        with self._stages.run("retire"):
            self._retirements.retire(decided.stop, self._bus.current)
        with self._stages.run("history"):
            serving = [r for r in self._backend.replicas() if r.replica_id not in self._retirements]
            await self._history.record(entity_counts(desired.targets, serving))

    def _read(self) -> _Read:
        """The store's view, in one transaction; one endpoint's unreadable config document or
        model version costs that endpoint alone."""
        unreadable: set[str] = set()
        records: list[EndpointRecord] = []
        chunks: dict[tuple[str, str], int] = {}
        with self._db.transaction() as session:
            tokens = token_store.live_tokens(session, self._clock.now_ms())
            queriers = grants.all_grants(session, ObjectType.SERVING_ENDPOINT)
            for name, read in endpoint_store.each_endpoint(session):
                what = "endpoint %s: reading its configs and model versions"
                with self._stages.guard("read", what, name) as reading:
                    record = read()
                    records.append(record)
                    for entity in entities_of(record.config, record.pending_config):
                        self._remember_artifact(session, entity)
                        chunks.update(self._chunk(session, entity))
                if reading.failed:
                    unreadable.add(name)
        return _Read(records, tokens, queriers, frozenset(unreadable), chunks)

    def _remember_artifact(self, session: Any, entity: ServedEntity) -> None:
        key = entity.registered_model
        if key is None:
            return
        if key not in self._artifacts:
            version = model_store.get_version(session, key[0], int(key[1]))
            environment = version.details.get("environment") or {"hash": None}
            self._artifacts[key] = ArtifactRef(
                version.artifact_path,
                version.format,
                environment,
                version.details.get("task"),
                version.details.get("container_spec"),
                as_uri(version.artifact_path) if version.source else None,
                int(version.details.get("file_size_bytes") or 0),
            )

    def _chunk(self, session: Any, entity: ServedEntity) -> dict[tuple[str, str], int]:
        """The stored chunk of an open LLM entity sized in throughput, if calibrated here."""
        key = entity.registered_model
        if key is None or not asks_throughput(entity):
            return {}
        artifact = self._artifacts[key]
        if artifact.model_format not in CALIBRATED_FORMATS:
            return {}
        found = self.calibrations.lookup(session, *key, artifact.environment)
        return {} if found is None else {key: found.chunk_tps}

    def _targets(self, read: _Read) -> _Desired:
        """Each endpoint's target; those whose target cannot be built (or whose model
        versions could not be read) are held."""
        targets: list[EndpointTarget] = []
        held = set(read.unreadable)
        for record in read.records:
            if record.name in held:
                continue
            what = "endpoint %s: building its target"
            with self._stages.guard("target", what, record.name) as building:
                targets.append(self._target(record, read.queriers.get(record.id, ()), read.chunks))
            if building.failed:
                held.add(record.name)
        return _Desired(targets, frozenset(held))

    def _target(
        self,
        record: EndpointRecord,
        granted: Iterable[Grant],
        chunks: Mapping[tuple[str, str], int],
    ) -> EndpointTarget:
        lookup = self._artifacts.__getitem__

        def chunk(model: str, version: str) -> int | EntityState:
            found = chunks.get((model, version))
            return self._calibrating(model, version) if found is None else found

        def build(doc: EndpointConfigDoc | None) -> ConfigTarget | None:
            if doc is None:
                return None
            return config_target(
                record.name,
                record.id,
                doc,
                lambda n, v: lookup((n, v)),
                self._runtime,
                self._external,
                chunk,
            )

        return EndpointTarget(
            endpoint_id=record.id,
            name=record.name,
            current=build(record.config),
            pending=build(record.pending_config) if in_progress(record.config_update) else None,
            states=EndpointStates(
                record.ready,
                stored_states(record.config),
                stored_states(record.pending_config) if in_progress(record.config_update) else {},
            ),
            policy=route_policy(
                record, keys_at_least(ObjectType.SERVING_ENDPOINT, granted, "CAN_QUERY")
            ),
        )

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

    def _calibrating(self, model: str, version: str) -> EntityState:
        """What an open LLM entity shows while its version's chunk is measured on this host
        (a server moved to other hardware); the measuring starts here."""
        progress = self.calibrations.begin(model, version, after_failure=False)
        if progress.state is CalibrationState.FAILED:
            return EntityState(DeploymentState.FAILED, progress.message)
        return EntityState(
            DeploymentState.CREATING,
            f"Measuring the throughput chunk of model '{model}' version {version} on this "
            f"host: {progress.message}",
        )

    def _runtime(self, artifact: ArtifactRef) -> Runtime:
        if self._envs_on_nodes:
            # A build here would serve nothing, and until it ended a new leader would hold
            # the version's replicas as not wanted yet, stopping those it adopted.
            return on_nodes(artifact.environment)
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

    def _record_replicas(
        self, events: list[tuple[str, Event]], records: list[EndpointRecord]
    ) -> None:
        """Replicas' own transitions, on the endpoints (by name) that still exist."""
        now = self._clock.now_ms()
        ids = {r.name: r.id for r in records}
        with self._db.transaction() as session:
            for endpoint, (event_type, message, _) in events:
                if endpoint in ids:
                    endpoint_store.add_event(
                        session, ids[endpoint], event_type, message, now_ms=now
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

    def _count_replicas(self, replicas: Iterable[ReplicaStatus]) -> None:
        """``berth_replicas`` as the backend sees them now."""
        counts = Counter((r.spec.endpoint, r.spec.served_entity, r.state.value) for r in replicas)
        gauge = self._metrics.replicas
        gauge.clear()
        for labels, count in counts.items():
            gauge.labels(*labels).set(count)

    async def _execute(self, decided: Plan, targets: Iterable[EndpointTarget]) -> None:
        """Start the replicas the plan wants; keep scaled-to-zero entities warm."""
        if decided.start:  # a fenced store refuses a stale leader here, before it starts any
            await asyncio.to_thread(self._confirm_lease)
        for replica_id, spec in decided.start:
            if replica_id not in self._retirements:
                what = "endpoint %s: starting replica %s"
                with self._stages.guard("execute", what, spec.endpoint, replica_id):
                    await self._backend.start(replica_id, spec)
        for spec in _scaled_to_zero(targets):
            what = "endpoint %s: keeping %s warm"
            with self._stages.guard("execute", what, spec.endpoint, spec.served_entity):
                await self._backend.keep_warm(spec)

    def _confirm_lease(self) -> None:
        with self._db.transaction():
            pass

    def _publish(
        self,
        routes: Mapping[str, EndpointRoute],
        tokens: dict[str, Principal],
        held: Collection[str],
    ) -> None:
        """The plan's routes and the live tokens, when they changed; a held endpoint keeps
        the routes it had."""
        current = self._bus.current
        kept = {name: current.endpoints[name] for name in held if name in current.endpoints}
        routes = {**routes, **kept}
        if dict(current.endpoints) != routes or dict(current.tokens) != tokens:
            self._bus.publish(Snapshot(current.version + 1, routes, tokens))


def _scaled_to_zero(targets: Iterable[EndpointTarget]) -> set[ReplicaSpec]:
    """The specs of serving entities that run no replica now."""
    return {
        e.spec
        for t in targets
        if t.current is not None
        for e in t.current.entities
        if e.spec is not None and e.replicas == 0
    }
