"""A controller over a real SQLite store and an in-memory backend, driven one pass at a time.

``MemoryBackend`` implements berth's ``Backend`` protocol with dicts: replicas it is asked to
start stay STARTING until the test says they are ready, crashed, failed or exited.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from berth.backends.base import ReplicaSpec, ReplicaState, ReplicaStatus
from berth.controller.autoscaler import Policy
from berth.controller.calibration import Calibrations
from berth.controller.catch_up import Followers
from berth.controller.environments import Environments
from berth.controller.load_board import LoadBoard
from berth.controller.planner import Plan
from berth.controller.reconciler import Controller
from berth.core.dataplane import SnapshotBus
from berth.core.endpoint_config import EndpointConfigDoc
from berth.core.states import ConfigUpdate, EndpointReady
from berth.metrics import Metrics
from berth.sandbox import Sandbox
from berth.store import endpoints as endpoint_store
from berth.store import models as model_store
from berth.store.db import Database
from berth.store.endpoints import EndpointRecord
from berth.store.fencing import Transactions
from tests.unit.clock import StepClock

Json = dict[str, Any]


class MemoryBackend:
    def __init__(self, running: Iterable[ReplicaStatus] = ()) -> None:
        """``running``: replicas a previous server left behind, found again at start-up."""
        self.statuses = {r.replica_id: r for r in running}
        self.started: list[str] = []
        self.stopped: list[str] = []
        self.warm: set[ReplicaSpec] = set()
        self.refused: set[str] = set()
        """Endpoints whose replicas the backend cannot start: starting one raises."""
        self.closed = False

    async def adopt(self) -> None:
        """Nothing to find: ``running`` holds what a previous server left behind."""

    async def start(self, replica_id: str, spec: ReplicaSpec) -> None:
        if spec.endpoint in self.refused:
            raise OSError(f"cannot start {replica_id}: no space left on device")
        if replica_id not in self.statuses:
            self.statuses[replica_id] = ReplicaStatus(replica_id, spec, ReplicaState.STARTING)
            self.started.append(replica_id)

    async def stop(self, replica_id: str) -> None:
        if self.statuses.pop(replica_id, None) is not None:
            self.stopped.append(replica_id)

    def replicas(self) -> list[ReplicaStatus]:
        return list(self.statuses.values())

    async def keep_warm(self, spec: ReplicaSpec) -> None:
        self.warm.add(spec)

    def logs(self, replica_id: str, max_bytes: int) -> str:
        return f"{replica_id} loaded its model\n"[-max_bytes:]

    async def close(self) -> None:
        self.statuses.clear()
        self.closed = True

    def ready(self, replica_id: str) -> None:
        status = self.statuses[replica_id]
        address = f"unix:/replicas/{replica_id}.sock"
        self.statuses[replica_id] = replace(status, state=ReplicaState.READY, address=address)

    def crash(self, replica_id: str, message: str) -> None:
        """The replica died and is being started again."""
        status = self.statuses[replica_id]
        self.statuses[replica_id] = replace(
            status, state=ReplicaState.STARTING, restarts=status.restarts + 1, message=message
        )

    def fail(self, replica_id: str, message: str) -> None:
        """The replica crashed too often: no more restarts."""
        status = self.statuses[replica_id]
        self.statuses[replica_id] = replace(status, state=ReplicaState.FAILED, message=message)

    def exit(self, replica_id: str) -> None:
        """The replica's process is gone and nothing restarts it."""
        del self.statuses[replica_id]

    def of(self, model_version: int) -> str:
        """The one replica running ``model_version`` of the model."""
        (found,) = [
            rid for rid, s in self.statuses.items() if s.spec.artifact == artifact(model_version)
        ]
        return found

    def on(self, endpoint: str) -> str:
        """The one replica of ``endpoint``."""
        (found,) = [rid for rid, s in self.statuses.items() if s.spec.endpoint == endpoint]
        return found


def artifact(model_version: int) -> str:
    return f"/artifacts/sum/{model_version}"


def register(db: Database, versions: int = 1, environment: Json | None = None) -> None:
    """Model ``sum`` with ``versions`` versions, each running in berth's own environment
    unless ``environment`` says another (as registration records it)."""
    with db.transaction() as session:
        model_store.create_model(
            session, name="sum", description="", tags=[], creator="ann", now_ms=1
        )
        for _ in range(versions):
            number = model_store.allocate_version(session, "sum", 1)
            new = model_store.NewVersion(
                source="/src/sum",
                format="score_py",
                status="READY",
                artifact_path=artifact(number),
                details={} if environment is None else {"environment": environment},
                description="",
                creator="ann",
            )
            model_store.add_version(session, "sum", number, new, 1)


def document(config_version: int, model_version: int, **entity: Any) -> EndpointConfigDoc:
    return EndpointConfigDoc.from_json(document_json(config_version, model_version, **entity))


def document_json(config_version: int, model_version: int, **entity: Any) -> Json:
    """The stored form of ``document``, for tests that write a row by hand."""
    return {
        "config_version": config_version,
        "served_entities": [
            {
                "name": "sum-entity",
                "entity_name": "sum",
                "entity_version": str(model_version),
                "workload_size": "Small",
                "scale_to_zero_enabled": False,
                **entity,
            }
        ],
        "traffic_config": {
            "routes": [{"served_entity_name": "sum-entity", "traffic_percentage": 100}]
        },
    }


def create(db: Database, name: str, pending: EndpointConfigDoc, **fields: Any) -> None:
    """An endpoint as the API stores it: its first config pending."""
    record = EndpointRecord(
        id=uuid.uuid4().hex,
        name=name,
        creator="ann",
        created_at=1,
        updated_at=1,
        description="",
        config=None,
        config_version=0,
        pending_config=pending,
        ready=EndpointReady.NOT_READY,
        config_update=ConfigUpdate.IN_PROGRESS,
        task=None,
        tags=[],
        ai_gateway=None,
        rate_limits=None,
        route_optimized=False,
        email_notifications=None,
        budget_policy_id=None,
        telemetry_config=None,
    )
    with db.transaction() as session:
        endpoint_store.insert_endpoint(session, replace(record, **fields))


def update(db: Database, name: str, pending: EndpointConfigDoc) -> None:
    with db.transaction() as session:
        record = endpoint_store.get_endpoint(session, name)
        assert record is not None
        assert endpoint_store.request_config(session, record.id, pending, 2)


def delete(db: Database, name: str) -> None:
    with db.transaction() as session:
        assert endpoint_store.delete_endpoint(session, name)


def cancel(db: Database, name: str) -> None:
    with db.transaction() as session:
        record = endpoint_store.get_endpoint(session, name)
        assert record is not None and record.pending_config is not None
        assert endpoint_store.cancel_update(session, record.id, record.pending_config, 3)


class World:
    """One controller with its store, backend, routes and metrics."""

    def __init__(
        self,
        db: Database,
        envs: Path,
        backend: MemoryBackend | None = None,
        *,
        followers: Followers | None = None,
        load: LoadBoard | None = None,
        policy: Policy | None = None,
        reveal: Callable[[str], str | None] | None = None,
        tick_s: float = 0.5,
        store: Transactions | None = None,
        envs_on_nodes: bool = False,
    ) -> None:
        """``store`` is what the controller reads and writes through (default ``db``);
        ``envs_on_nodes`` as the ray backend's servers run it."""
        self.db = db
        self.backend = backend or MemoryBackend()
        self.bus = SnapshotBus()
        self.metrics = Metrics()
        self.drained: list[str] = []
        self.undrainable: set[str] = set()
        """Replica ids whose draining fails (a gateway that cannot be reached)."""
        self.clock = clock = StepClock()
        environments = Environments(
            envs, "/usr/bin/python3", lambda: self.controller.nudge(), self.metrics
        )
        sandbox = Sandbox(envs / "boxes", mode="none")
        calibrations = Calibrations(
            db, environments, sandbox, clock, envs / "calibrations", lambda: None
        )
        self.controller = Controller(
            store or db,
            self.backend,
            self.bus,
            clock,
            environments=environments,
            calibrations=calibrations,
            drain=self._drain,
            reveal=reveal or (lambda _text: None),
            metrics=self.metrics,
            load=load,
            policy=policy,
            followers=followers,
            tick_s=tick_s,
            envs_on_nodes=envs_on_nodes,
        )

    async def _drain(self, replica_id: str) -> None:
        if replica_id in self.undrainable:
            raise ConnectionError(f"gateway unreachable while draining {replica_id}")
        self.drained.append(replica_id)

    async def reconcile(self) -> Plan:
        return await self.controller.reconcile()

    def endpoint(self, name: str) -> EndpointRecord:
        with self.db.transaction() as session:
            record = endpoint_store.get_endpoint(session, name)
        assert record is not None
        return record

    def events(self, name: str) -> list[tuple[str, str]]:
        with self.db.transaction() as session:
            found = endpoint_store.list_events(session, self.endpoint(name).id)
        return [(e.event_type, e.message) for e in found]

    def routed(self, name: str) -> list[str]:
        """The replica ids the published routes send ``name``'s traffic to."""
        route = self.bus.current.endpoints[name]
        return [r.replica_id for e in route.entities for r in e.replicas]

    def failures(self, stage: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "berth_controller_stage_failures_total", {"stage": stage}
        )
        assert value is not None
        return value


async def serving(world: World, name: str = "ep") -> str:
    """Create ``name`` on version 1 and drive it until it serves; its replica id."""
    create(world.db, name, document(1, 1))
    await world.reconcile()
    replica = world.backend.on(name)
    world.backend.ready(replica)
    await world.reconcile()
    assert world.routed(name) == [replica]
    return replica


async def settle(condition: Callable[[], bool]) -> None:
    """Let the tasks beside the loop run until ``condition`` holds; no time passes."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")
