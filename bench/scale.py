"""Benchmark: how far one controller, its snapshots and its store go (issue 18, item 4).

Prints figures, asserts nothing. Three parts:

1. **The controller's pass against the endpoint count.** berth's own `Controller` over a real
   store (a SQLite file; PostgreSQL too, a throwaway cluster started as the suite starts one)
   and an in-memory backend in which every replica asked for is ready at once at the address
   the local backend would give it (the bench measures the controller, not replica
   processes). Each size is driven the way the API leaves it: endpoints stored with a pending
   config, a pass that starts the replicas, a pass that promotes, then steady passes, each
   stage timed by the controller itself (``berth_controller_stage_seconds``). Statements are
   counted with a SQLAlchemy listener: per steady pass, and on the first pass of a minute
   (the replica history).
2. **A snapshot of 1,000 endpoints and 10,000 replicas**, the one the controller published in
   part 1: its JSON size (gzip too), serialising, parsing and applying it in a gateway, then
   publishing it to 4 real gateway workers (``python -m berth.server.worker``, started by
   berth's own `WorkerPool` from a control process built by `build_server` and served by
   uvicorn on 127.0.0.1, exactly as ``berth serve --gateway-workers 4``): each worker
   long-polls ``GET /api/2.0/berth/data-plane``, parses and applies the snapshot, and reports
   the version it holds on its pipe; the time is from ``bus.publish`` to every worker holding
   it (`WorkerPool.caught_up`, what a retirement waits for).
3. **The usage writer's flush**: one ``usage.add`` of a sum per endpoint, timed and counted on
   each store, from which the writes per second of N gateway processes follow.

Run: ``./uvw run python bench/scale.py [--endpoints 10 100 1000 3000] [--replicas 10]
[--stores sqlite postgres] [--passes 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import gzip
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the suite's PostgreSQL starter, tests/support/postgres.py

from sqlalchemy import Engine, event  # noqa: E402

from berth.backends.base import ReplicaSpec, ReplicaState, ReplicaStatus  # noqa: E402
from berth.backends.process import box_of  # noqa: E402
from berth.controller.calibration import Calibrations  # noqa: E402
from berth.controller.environments import Environments  # noqa: E402
from berth.controller.reconciler import Controller  # noqa: E402
from berth.core.dataplane import Snapshot, SnapshotBus  # noqa: E402
from berth.core.endpoint_config import EndpointConfigDoc  # noqa: E402
from berth.core.latency import BUCKETS  # noqa: E402
from berth.core.permissions import Grant, GranteeKind, ObjectType  # noqa: E402
from berth.core.principal import PrincipalKind  # noqa: E402
from berth.core.states import ConfigUpdate, EndpointReady  # noqa: E402
from berth.core.usage import MINUTE_MS, UsageKey, UsageSum  # noqa: E402
from berth.gateway.build import build_gateway  # noqa: E402
from berth.metrics import Metrics  # noqa: E402
from berth.sandbox import Sandbox  # noqa: E402
from berth.secrets.sealed_snapshot import open_externals, seal_externals  # noqa: E402
from berth.settings import Settings  # noqa: E402
from berth.store import endpoints as endpoint_store  # noqa: E402
from berth.store import grants, principals, usage  # noqa: E402
from berth.store import models as model_store  # noqa: E402
from berth.store import tokens as token_store  # noqa: E402
from berth.store.db import Database  # noqa: E402
from berth.store.endpoints import EndpointRecord  # noqa: E402

STAGES = (
    "read",
    "target",
    "autoscale",
    "plan",
    "execute",
    "publish",
    "record",
    "retire",
    "history",
)
WRITES = ("INSERT", "UPDATE", "DELETE")
ADMIN = "bth_" + "0" * 43
TICK_MS = 500
"""The controller's pass period (``tick_s``): passes a minute = 120."""


# -- the world the controller runs in ------------------------------------------------------


class FleetBackend:
    """berth's ``Backend`` protocol over a dict: a replica asked for is READY at once, at the
    Unix socket the local backend would give it (same box, same name)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.statuses: dict[str, ReplicaStatus] = {}

    async def start(self, replica_id: str, spec: ReplicaSpec) -> None:
        address = f"unix:{box_of(self._sandbox, spec).socket(replica_id)}"
        self.statuses[replica_id] = ReplicaStatus(
            replica_id, spec, ReplicaState.READY, address=address, pid=100_000
        )

    async def stop(self, replica_id: str) -> None:
        self.statuses.pop(replica_id, None)

    def replicas(self) -> list[ReplicaStatus]:
        return list(self.statuses.values())

    async def keep_warm(self, spec: ReplicaSpec) -> None:
        return None

    def logs(self, replica_id: str, max_bytes: int) -> str:
        return ""

    async def close(self) -> None:
        self.statuses.clear()


class PassClock:
    """The controller's clock: moved by hand, one tick a pass, so a minute's first pass is
    chosen rather than waited for."""

    def __init__(self) -> None:
        self.now = (time.time_ns() // 1_000_000 // MINUTE_MS + 1) * MINUTE_MS + 1_000

    def now_ms(self) -> int:
        return self.now


class Statements:
    """Counts the statements an engine runs, by verb, and its commits."""

    def __init__(self, engine: Engine) -> None:
        self.counts: Counter[str] = Counter()
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *args: Any) -> None:
        statement, parameters, executemany = args[2], args[3], args[5]
        verb = statement.lstrip().split(None, 1)[0].upper()
        self.counts[verb] += len(parameters) if executemany else 1

    def _commit(self, _conn: Any) -> None:
        self.counts["COMMIT"] += 1

    @contextlib.contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        before = Counter(self.counts)
        found: Counter[str] = Counter()
        yield found
        found.update(self.counts)
        found.subtract(before)


def entity_json(replicas: int) -> dict[str, Any]:
    """A served entity of model ``m`` version 1 with exactly ``replicas`` replicas."""
    return {
        "name": "m-1",
        "entity_name": "m",
        "entity_version": "1",
        "min_provisioned_concurrency": 4 * replicas,
        "max_provisioned_concurrency": 4 * replicas,
        "scale_to_zero_enabled": False,
    }


def populate(db: Database, artifacts: Path, endpoints: int, replicas: int) -> None:
    """Model ``m`` v1, ``endpoints`` endpoints as the API stores a create (their config
    pending), a token per endpoint (its caller), and CAN_QUERY for a user and a group on each."""
    now = 1
    with db.transaction() as session:
        model_store.create_model(session, name="m", description="", tags=[], creator="a", now_ms=1)
        number = model_store.allocate_version(session, "m", 1)
        new = model_store.NewVersion(
            source=str(artifacts),
            format="score_py",
            status="READY",
            artifact_path=str(artifacts),
            details={},
            description="",
            creator="a",
        )
        model_store.add_version(session, "m", number, new, 1)
        doc = EndpointConfigDoc.from_json(
            {
                "config_version": 1,
                "served_entities": [entity_json(replicas)],
                "traffic_config": {
                    "routes": [{"served_entity_name": "m-1", "traffic_percentage": 100}]
                },
            }
        )
        callers = [f"svc-{i}" for i in range(endpoints)]
        for i, caller in enumerate(callers):
            principal = principals.ensure_principal(
                session, caller, PrincipalKind.SERVICE_PRINCIPAL, now
            )
            token_store.add_token(
                session,
                token_id=uuid.uuid4().hex,
                principal_id=principal,
                token_hash=hashlib.sha256(f"bth_{i}".encode()).hexdigest(),
                comment="",
                now_ms=now,
                expires_at=None,
            )
        for i in range(endpoints):
            record = EndpointRecord(
                id=uuid.uuid4().hex,
                name=f"ep-{i:05d}",
                creator="a",
                created_at=now,
                updated_at=now,
                description="",
                config=None,
                config_version=0,
                pending_config=doc,
                ready=EndpointReady.NOT_READY,
                config_update=ConfigUpdate.IN_PROGRESS,
                task=None,
                tags=[],
                ai_gateway=None,
                rate_limits=[{"calls": 100, "key": "user", "renewal_period": "minute"}],
                route_optimized=False,
                email_notifications=None,
                budget_policy_id=None,
                telemetry_config=None,
            )
            endpoint_store.insert_endpoint(session, record)
            for grant in (
                Grant(GranteeKind.SERVICE_PRINCIPAL, callers[i], "CAN_QUERY"),
                Grant(GranteeKind.GROUP, f"team-{i % 20}", "CAN_QUERY"),
            ):
                grants.set_grant(session, ObjectType.SERVING_ENDPOINT, record.id, grant)


class Collections:
    """A ``gc.callbacks`` entry: the time spent in collections, and the full ones."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._began
        self.full += info["generation"] == 2


@dataclass
class PassFigures:
    endpoints: int
    replicas: int
    store: str
    setup_s: float = 0.0
    create_s: float = 0.0
    """The pass that starts every replica."""
    promote_s: float = 0.0
    """The pass that finds them ready: routes published, every endpoint promoted."""
    steady_s: list[float] = field(default_factory=list)
    steady_cpu_s: list[float] = field(default_factory=list)
    """CPU of this process (every thread) per steady pass: what other load on the machine
    does not inflate, as it does the wall time."""
    gc_s: float = 0.0
    """Seconds in the cyclic collector per steady pass."""
    full_collections: float = 0.0
    """Full (generation 2) collections per steady pass."""
    minute_s: float = 0.0
    """The steady pass that opens a minute (replica history written)."""
    stages: dict[str, float] = field(default_factory=dict)
    """Mean seconds per steady pass, per stage."""
    steady_statements: Counter[str] = field(default_factory=Counter)
    """Per steady pass."""
    minute_statements: Counter[str] = field(default_factory=Counter)
    promote_statements: Counter[str] = field(default_factory=Counter)
    snapshot: Snapshot | None = None


def stage_sums(metrics: Metrics) -> dict[str, float]:
    registry = metrics.registry
    return {
        stage: registry.get_sample_value("berth_controller_stage_seconds_sum", {"stage": stage})
        or 0.0
        for stage in STAGES
    }


async def controller_passes(
    url: str, scratch: Path, endpoints: int, replicas: int, passes: int, store: str
) -> PassFigures:
    figures = PassFigures(endpoints, endpoints * replicas, store)
    began = time.perf_counter()
    db = Database(url)
    db.migrate()
    artifacts = scratch / "artifact"
    artifacts.mkdir(parents=True, exist_ok=True)
    populate(db, artifacts, endpoints, replicas)
    figures.setup_s = time.perf_counter() - began
    statements = Statements(db.engine)
    metrics = Metrics()
    sandbox = Sandbox(scratch / "boxes", mode="none")
    backend = FleetBackend(sandbox)
    clock = PassClock()
    environments = Environments(scratch / "envs", sys.executable, lambda: None, metrics)
    calibrations = Calibrations(
        db, environments, sandbox, clock, scratch / "calibrations", lambda: None
    )

    async def drain(_replica_id: str) -> None:
        return None

    bus = SnapshotBus()
    controller = Controller(
        db,
        backend,
        bus,
        clock,
        environments=environments,
        calibrations=calibrations,
        drain=drain,
        reveal=lambda _text: None,
        metrics=metrics,
    )

    async def one_pass() -> float:
        clock.now += TICK_MS
        started = time.perf_counter()
        await controller.reconcile()
        return time.perf_counter() - started

    try:
        # berth's own environment is readied in a thread: passes until it is, then the one
        # that starts every replica.
        for _ in range(200):
            figures.create_s = await one_pass()
            if backend.statuses:
                break
            await asyncio.sleep(0.05)
        with statements.counting() as promoted:
            figures.promote_s = await one_pass()
        figures.promote_statements = promoted
        assert len(backend.statuses) == endpoints * replicas, len(backend.statuses)
        assert all(
            r.config_version == 1 and len(r.entities[0].replicas) == replicas
            for r in bus.current.endpoints.values()
        )
        await one_pass()  # the retire and history stages of a promoted fleet settle
        gc.collect()
        before = stage_sums(metrics)
        collections = Collections()
        gc.callbacks.append(collections)
        try:
            with statements.counting() as steady:
                for _ in range(passes):
                    cpu = time.process_time()
                    figures.steady_s.append(await one_pass())
                    figures.steady_cpu_s.append(time.process_time() - cpu)
        finally:
            gc.callbacks.remove(collections)
        figures.gc_s = collections.seconds / passes
        figures.full_collections = collections.full / passes
        after = stage_sums(metrics)
        figures.stages = {s: (after[s] - before[s]) / passes for s in STAGES}
        figures.steady_statements = Counter({k: v // passes for k, v in steady.items() if v})
        clock.now = (clock.now // MINUTE_MS + 1) * MINUTE_MS - TICK_MS
        with statements.counting() as minute:
            figures.minute_s = await one_pass()
        figures.minute_statements = minute
        figures.snapshot = bus.current
    finally:
        await controller.close()
        db.dispose()
    return figures


# -- the snapshot ---------------------------------------------------------------------------


def best(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """The fastest of ``repeat`` runs, in seconds, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


@dataclass
class SnapshotFigures:
    endpoints: int
    replicas: int
    tokens: int
    json_bytes: int
    gzip_bytes: int
    to_json_s: float
    dumps_s: float
    loads_s: float
    from_json_s: float
    apply_s: float
    parsed_mb: float


def dumps(payload: Any) -> bytes:
    """As Starlette's ``JSONResponse`` renders an answer."""
    return json.dumps(
        payload, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


async def snapshot_figures(snapshot: Snapshot, home: Path) -> SnapshotFigures:
    from berth.secrets import SecretCipher

    cipher = SecretCipher(os.urandom(32))
    to_json_s, payload = best(lambda: seal_externals(snapshot.to_json(), cipher))
    dumps_s, body = best(lambda: dumps(payload))
    loads_s, loaded = best(lambda: json.loads(body))
    from_json_s, parsed = best(lambda: Snapshot.from_json(open_externals(loaded, cipher)))
    tracemalloc.start()
    held = Snapshot.from_json(open_externals(json.loads(body), cipher))
    parsed_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del held
    settings = Settings(home=home)
    bus = SnapshotBus()
    gateway = build_gateway(settings, bus, metrics=Metrics(), on_demand=lambda _e, _n: None)
    applies = []
    for i in range(5):  # what a worker's Subscriber does with a new version: publish locally
        fresh = replace(parsed, version=parsed.version + i + 1)
        gc.collect()
        started = time.perf_counter()
        bus.publish(fresh)
        applies.append(time.perf_counter() - started)
    await gateway.close()
    return SnapshotFigures(
        endpoints=len(snapshot.endpoints),
        replicas=sum(len(e.replicas) for r in snapshot.endpoints.values() for e in r.entities),
        tokens=len(snapshot.tokens),
        json_bytes=len(body),
        gzip_bytes=len(gzip.compress(body, 6)),
        to_json_s=to_json_s,
        dumps_s=dumps_s,
        loads_s=loads_s,
        from_json_s=from_json_s,
        apply_s=min(applies),
        parsed_mb=parsed_bytes / 2**20,
    )


# -- publishing to 4 real gateway workers ---------------------------------------------------


@dataclass
class FanOut:
    endpoints: int
    rounds_s: list[float]
    control_cpu_s: float
    """CPU of the control process per round (4 answers of the long poll)."""
    worker_cpu_s: float
    """CPU of one worker per round (parse and apply), averaged over the workers."""
    worker_rss_mb: float


def children() -> list[int]:
    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == me:
                found.append(int(stat.parent.name))
    return found


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def fan_out(
    snapshots: list[Snapshot], home: Path, workers: int, rounds: int, log: Path
) -> list[FanOut]:
    import uvicorn

    from berth.server.app import build_server
    from berth.server.worker import bound_socket
    from berth.server.workers import WorkerPool

    settings = Settings.model_validate(
        {"home": home, "admin_token": ADMIN, "server": {"host": "127.0.0.1"}}
    )
    with bound_socket("127.0.0.1", 0, reuse_port=False) as probe:
        port = probe.getsockname()[1]
    public = bound_socket("127.0.0.1", port)  # held for the workers, as ``berth serve`` does
    control = bound_socket("127.0.0.1", 0, reuse_port=False)
    control_url = f"http://127.0.0.1:{control.getsockname()[1]}"
    pool = WorkerPool(settings, workers, port)
    server = build_server(settings, pool)
    controller = server.services.controller
    assert isinstance(controller, Controller)
    # One pass at start-up publishes the store's (empty) routes and the admin token; the loop
    # is left off, or its next pass would publish them again over the synthetic ones.
    controller.start = lambda: None  # type: ignore[method-assign]
    bus = server.services.bus
    config = uvicorn.Config(server.app, log_level="warning", access_log=False, lifespan="on")
    uv = uvicorn.Server(config)
    serving = asyncio.create_task(uv.serve(sockets=[control]))
    results = []
    try:
        while not uv.started:
            await asyncio.sleep(0.05)
        pool.start(control_url, ADMIN)
        for _ in range(600):
            if pool.serving == workers:
                break
            await asyncio.sleep(0.1)
        assert pool.serving == workers, f"{pool.serving} of {workers} workers serve; see {log}"
        pids = children()
        admin = dict(bus.current.tokens)
        # What the control process and the workers spend idle (load reports every 0.5 s),
        # taken off each round's CPU.
        idle_before = time.process_time(), sum(cpu_s(p) for p in pids)
        await asyncio.sleep(2.0)
        idle_control = (time.process_time() - idle_before[0]) / 2.0
        idle_workers = (sum(cpu_s(p) for p in pids) - idle_before[1]) / 2.0
        for snapshot in snapshots:
            times, control_cpu, worker_cpu = [], 0.0, 0.0
            for _ in range(rounds):
                version = bus.current.version + 1
                fresh = Snapshot(version, snapshot.endpoints, {**snapshot.tokens, **admin})
                cpu_before = time.process_time(), sum(cpu_s(p) for p in pids)
                started = time.perf_counter()
                bus.publish(fresh)
                await pool.caught_up(version, 120)
                times.append(time.perf_counter() - started)
                await asyncio.sleep(0.5)  # the workers' next long polls begin
                spent = time.perf_counter() - started
                control_cpu += time.process_time() - cpu_before[0] - idle_control * spent
                worker_cpu += sum(cpu_s(p) for p in pids) - cpu_before[1] - idle_workers * spent
            results.append(
                FanOut(
                    len(snapshot.endpoints),
                    times,
                    control_cpu / rounds,
                    worker_cpu / rounds / workers,
                    statistics.mean(rss_mb(p) for p in pids),
                )
            )
    finally:
        await pool.stop()
        uv.should_exit = True
        await serving
        server.services.db.dispose()
        public.close()
    return results


# -- the usage writer -----------------------------------------------------------------------


Flush = tuple[float, float, Counter[str]]
"""Wall seconds, this process's CPU seconds (the store's own is not in it), statements."""


def usage_flush(url: str, keys: int) -> tuple[Flush, Flush]:
    """One flush of a sum per endpoint into a fresh minute (inserts), then another into the
    same minute (updates)."""
    db = Database(url)
    db.migrate()
    statements = Statements(db.engine)
    minute = (time.time_ns() // 1_000_000 // MINUTE_MS) * MINUTE_MS
    sums = {
        UsageKey(minute, uuid.uuid4().hex, "m-1", "", 200): UsageSum(10, 0, 0, 50.0, [1] * BUCKETS)
        for _ in range(keys)
    }
    try:
        timed: list[Flush] = []
        for _ in range(2):
            with statements.counting() as counted:
                started, cpu = time.perf_counter(), time.process_time()
                with db.transaction() as session:
                    usage.add(session, sums)
                timed.append((time.perf_counter() - started, time.process_time() - cpu, counted))
    finally:
        db.dispose()
    return timed[0], timed[1]


# -- the report -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def writes(counted: Counter[str]) -> int:
    return sum(counted[v] for v in WRITES)


def describe(counted: Counter[str]) -> str:
    shown = [f"{counted[v]} {v.lower()}" for v in (*WRITES, "SELECT") if counted[v]]
    return ", ".join(shown) + f", {counted['COMMIT']} commits" if shown else "none"


def table(headers: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join(" --- " for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


@contextlib.contextmanager
def postgres(scratch: Path) -> Iterator[Callable[[], str] | None]:
    try:
        from tests.support.postgres import PostgresCluster

        cluster = PostgresCluster.start(scratch / "pg")
    except Exception as exc:  # no PostgreSQL here: SQLite alone
        print(f"PostgreSQL not started ({exc}); SQLite only\n")
        yield None
        return
    try:
        yield cluster.new_database
    finally:
        cluster.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=int, nargs="+", default=[10, 100, 1000, 3000])
    parser.add_argument("--replicas", type=int, default=10, help="per endpoint")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--passes", type=int, default=5, help="steady passes timed per size")
    parser.add_argument("--workers", type=int, default=4, help="gateway workers to publish to")
    parser.add_argument("--rounds", type=int, default=5, help="publishes timed per snapshot")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="berth-scale-"))
    os.chmod(scratch, 0o755)  # the PostgreSQL cluster under it runs as its own user
    print(f"# berth at scale: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"load average at the start: {os.getloadavg()[0]:.2f}")
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{args.replicas} replicas per endpoint\n"
    )
    try:
        with postgres(scratch) if "postgres" in args.stores else contextlib.nullcontext() as pg:
            stores: list[tuple[str, Callable[[], str]]] = []
            if "sqlite" in args.stores:
                counter = iter(range(1000))
                stores.append(("sqlite", lambda: f"sqlite:///{scratch}/s{next(counter)}.db"))
            if pg is not None:
                stores.append(("postgres", pg))
            figures: list[PassFigures] = []
            for store, url in stores:
                for n in args.endpoints:
                    found = await controller_passes(
                        url(), scratch / f"{store}-{n}", n, args.replicas, args.passes, store
                    )
                    figures.append(found)
                    print(
                        f"  {store} {n} endpoints: steady pass {ms(min(found.steady_s))} ms "
                        f"(setup {found.setup_s:.1f} s)",
                        file=sys.stderr,
                    )
            flushes = [(store, *usage_flush(url(), 1000)) for store, url in stores]
        report_passes(figures)
        snapshots = {f.endpoints: f.snapshot for f in figures if f.store == "sqlite" and f.snapshot}
        if snapshots:
            sizes = [await snapshot_figures(s, scratch / "gateway") for s in snapshots.values()]
            report_snapshots(sizes)
            log = scratch / "workers.log"
            fanned = await with_stderr(
                log,
                fan_out(
                    [s for _, s in sorted(snapshots.items())],
                    scratch / "home",
                    args.workers,
                    args.rounds,
                    log,
                ),
            )
            report_fan_out(fanned, args.workers)
        report_writes(figures, flushes, args.workers)
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def with_stderr(log: Path, work: Any) -> Any:
    """Run ``work`` with this process's (and so the workers') stderr in ``log``."""
    saved = os.dup(2)
    with log.open("ab") as sink:
        os.dup2(sink.fileno(), 2)
    try:
        return await work
    except BaseException:
        os.dup2(saved, 2)
        print(log.read_text()[-4000:], file=sys.stderr)
        raise
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def report_passes(figures: list[PassFigures]) -> None:
    print("## The controller's pass\n")
    print(
        "One pass in ms: the create and promote passes once; steady (nothing changed since "
        "the last pass): the best wall and CPU time of the steady passes, the mean in the "
        "collector and per stage (wall).\n"
    )
    table(
        ["store", "endpoints", "replicas", "create pass ms", "promote pass ms", "steady pass ms"]
        + ["CPU ms", "in gc ms", "full gcs"]
        + [f"{s} ms" for s in ("read", "target", "autoscale", "plan", "publish", "history")],
        [
            [
                f.store,
                f"{f.endpoints:,}",
                f"{f.replicas:,}",
                ms(f.create_s),
                ms(f.promote_s),
                ms(min(f.steady_s)),
                ms(min(f.steady_cpu_s)),
                ms(f.gc_s),
                f"{f.full_collections:.1f}",
                *(ms(f.stages[s]) for s in ("read", "target", "autoscale", "plan", "publish")),
                ms(f.stages["history"]),
            ]
            for f in figures
        ],
    )
    by_store: dict[str, list[PassFigures]] = {}
    for f in figures:
        by_store.setdefault(f.store, []).append(f)
    for store, found in by_store.items():
        found.sort(key=lambda f: f.endpoints)
        growth = [
            f"{b.endpoints // a.endpoints}× endpoints → "
            f"{min(b.steady_cpu_s) / min(a.steady_cpu_s):.1f}× CPU"
            for a, b in zip(found, found[1:], strict=False)
        ]
        per = min(found[-1].steady_cpu_s) / found[-1].endpoints
        print(f"- {store}: {'; '.join(growth)}; {per * 1e6:,.0f} µs CPU an endpoint at the largest")
    print()


def report_snapshots(sizes: list[SnapshotFigures]) -> None:
    print("## The snapshot\n")
    print(
        "As the controller published it in the pass above (SQLite). to_json includes sealing "
        "externals (none here), dumps as Starlette renders it, apply is a gateway's "
        "`bus.publish` (its route-change listeners).\n"
    )
    table(
        [
            "endpoints",
            "replicas",
            "tokens",
            "JSON KiB",
            "gzip KiB",
            "to_json ms",
            "dumps ms",
            "loads ms",
            "from_json ms",
            "apply ms",
            "parsed MiB",
        ],
        [
            [
                f"{s.endpoints:,}",
                f"{s.replicas:,}",
                f"{s.tokens:,}",
                f"{s.json_bytes / 1024:,.0f}",
                f"{s.gzip_bytes / 1024:,.0f}",
                ms(s.to_json_s),
                ms(s.dumps_s),
                ms(s.loads_s),
                ms(s.from_json_s),
                ms(s.apply_s),
                f"{s.parsed_mb:.1f}",
            ]
            for s in sorted(sizes, key=lambda s: s.endpoints)
        ],
    )
    largest = max(sizes, key=lambda s: s.endpoints)
    print(
        f"- {largest.json_bytes / largest.replicas:.0f} bytes of JSON per replica at "
        f"{largest.replicas:,} replicas\n"
    )


def report_fan_out(fanned: list[FanOut], workers: int) -> None:
    print(f"## Publishing to {workers} gateway workers\n")
    print(
        "Real worker processes long-polling a control process on 127.0.0.1; from "
        "`bus.publish` to every worker holding the version (`WorkerPool.caught_up`).\n"
    )
    table(
        [
            "endpoints",
            "to all workers ms (median)",
            "max ms",
            "control CPU ms per publish",
            "worker CPU ms per publish",
            "worker RSS MiB",
        ],
        [
            [
                f"{f.endpoints:,}",
                ms(statistics.median(f.rounds_s)),
                ms(max(f.rounds_s)),
                ms(f.control_cpu_s),
                ms(f.worker_cpu_s),
                f"{f.worker_rss_mb:.0f}",
            ]
            for f in fanned
        ],
    )


def report_writes(
    figures: list[PassFigures],
    flushes: list[tuple[str, Flush, Flush]],
    workers: int,
) -> None:
    print("## Statements the control plane sends its store\n")
    table(
        ["store", "endpoints", "steady pass", "first pass of a minute", "promote pass"],
        [
            [
                f.store,
                f"{f.endpoints:,}",
                describe(f.steady_statements),
                describe(f.minute_statements),
                describe(f.promote_statements),
            ]
            for f in figures
        ],
    )
    print("One usage flush of 1,000 sums (one per endpoint), as each gateway process makes:\n")
    table(
        [
            "store",
            "new minute ms",
            "CPU ms",
            "statements",
            "same minute ms",
            "CPU ms",
            "statements",
        ],
        [
            [store, ms(first[0]), ms(first[1]), describe(first[2])]
            + [ms(again[0]), ms(again[1]), describe(again[2])]
            for store, first, again in flushes
        ],
    )
    for f in figures:
        if f.endpoints != 1000:
            continue
        passes = 60_000 // TICK_MS
        history = writes(f.minute_statements) - writes(f.steady_statements)
        steady = writes(f.steady_statements) * passes
        per_minute = steady + history
        print(
            f"- {f.store}, 1,000 endpoints: controller {per_minute:,} writes a minute "
            f"({per_minute / 60:.1f}/s: {steady:,} from steady passes, {history:,} replica "
            f"history in one burst); reads: {f.steady_statements['SELECT']} selects a pass, "
            f"{f.steady_statements['SELECT'] * passes / 60:,.0f}/s"
        )
    for store, first, again in flushes:
        flushes_a_minute = 30  # every 2 s
        per_gateway = writes(first[2]) + writes(again[2]) * (flushes_a_minute - 1)
        selects = first[2]["SELECT"] + again[2]["SELECT"] * (flushes_a_minute - 1)
        print(
            f"- {store}: usage of 1,000 active endpoints, {workers} gateway processes: "
            f"{per_gateway * workers / 60:,.0f} writes/s and {selects * workers / 60:,.0f} "
            "selects/s, "
            f"{again[0] * workers / 2 * 100:.0f}% of one store connection's time"
        )
    print()


if __name__ == "__main__":
    asyncio.run(main())
