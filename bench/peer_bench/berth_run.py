"""berth's side of the comparison: a real ``berth serve`` on a scratch BERTH_HOME, the model
registered and deployed through the API, measured through the gateway like the peers, plus
what only berth has: deploy times, the gateway's own overhead, the replica straight, batching,
and more gateway workers.

Phases, each with its own server: (1) a fresh server: start, register, first and cached
deploy, loads, memory, overhead, the replica straight, profile, batching; (2) the same home
restarted: launch → first predict with the endpoint stored and its environment cached; (3) the
same home with ``--gateway-workers 2``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from replica_twin import twin_of

from . import drive, procs, profile
from .common import (
    DATAFRAME_SPLIT,
    EXPECTED,
    ServerResult,
    StartFailed,
    first_predict,
    free_port,
    launch,
    log_tail,
    predictions,
    wait_until,
)
from .drive import Load

TOKEN = "bth_bench-peers-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENDPOINT, CACHED, BATCHING = "iris", "iris-cached", "iris-batching"
BATCH = {"max_batch_size": 32, "max_batch_wait_ms": 2}
ROOT = Path(__file__).resolve().parents[2]
IDLE_S = 2.0


@dataclass
class BerthFigures:
    """What only berth reports, beside its lines in the comparison."""

    serve_start_s: float | None = None
    first_deploy_s: float | None = None
    cached_deploy_s: float | None = None
    serve_rss_mb: float | None = None
    replica_rss_mb: float | None = None
    total_rss_mb: float | None = None
    total_pss_mb: float | None = None
    processes: list[tuple[int, str, float]] = field(default_factory=list)
    overhead_p50_ms: float | None = None
    overhead_p99_ms: float | None = None
    overhead_samples: int = 0
    direct: dict[int, Load] = field(default_factory=dict)
    profiles: dict[str, profile.Summary] = field(default_factory=dict)
    profile_mode: str = "python"

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k not in ("direct", "profiles")}
        out["direct"] = {str(c): vars(r) for c, r in self.direct.items()}
        out["profiles"] = {k: v.to_json() for k, v in self.profiles.items()}
        return out


def berth_version() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True
        ).stdout.strip()

    from importlib.metadata import version

    dirty = " + uncommitted changes" if git("status", "--porcelain", "--", "src") else ""
    return f"berth {version('berth')} ({git('rev-parse', '--short', 'HEAD')}{dirty})"


class Server:
    """One ``berth serve`` process on ``home``."""

    def __init__(self, home: Path, port: int, extra: list[str] | None = None) -> None:
        self.home, self.port = home, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = home / "server.log"
        argv = [sys.executable, "-m", "berth", "serve", "--port", str(port), *(extra or [])]
        env = {"BERTH_HOME": str(home), "BERTH_ADMIN_TOKEN": TOKEN}
        self.started = time.monotonic()
        self.proc = launch(argv, env, home, self.log)
        self.api = httpx.Client(base_url=self.url, headers=AUTH, timeout=60)

    def wait_ready(self, timeout: float = 60) -> float:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise StartFailed(f"exited with code {self.proc.returncode}: {log_tail(self.log)}")
            try:
                return self.api.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout, "berth serve to be ready")
        return time.monotonic() - self.started

    def invocations(self, endpoint: str) -> str:
        return f"{self.url}/serving-endpoints/{endpoint}/invocations"

    def create(self, name: str, entity: dict[str, Any]) -> httpx.Response:
        served = {
            "entity_name": "iris",
            "entity_version": "1",
            "workload_size": "Small",  # one replica, like every peer's one worker
            "scale_to_zero_enabled": False,
            **entity,
        }
        config = {"served_entities": [served]}
        return self.api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})

    def wait_endpoint_ready(self, name: str, timeout: float) -> None:
        def ready() -> bool:
            state = self.api.get(f"/api/2.0/serving-endpoints/{name}").json()["state"]
            if state.get("config_update") == "UPDATE_FAILED":
                events = self.api.get(f"/api/2.0/serving-endpoints/{name}/events").text
                raise StartFailed(f"{name}: UPDATE_FAILED: {events[-600:]}")
            return bool(state["ready"] == "READY")

        wait_until(ready, timeout, f"endpoint {name} to be READY")

    def deploy(self, name: str, entity: dict[str, Any], timeout: float) -> float:
        started = time.monotonic()
        self.create(name, entity).raise_for_status()
        self.wait_endpoint_ready(name, timeout)
        return time.monotonic() - started

    def replica_states(self, endpoint: str) -> list[dict[str, Any]]:
        states = []
        for path in (self.home / "replicas").glob(f"{endpoint}.*/state.json"):
            states.append(json.loads(path.read_text()))
        return states

    def delete(self, name: str) -> None:
        pids = [s["pid"] for s in self.replica_states(name)]
        self.api.delete(f"/api/2.0/serving-endpoints/{name}").raise_for_status()
        wait_until(
            lambda: all(procs.rss_mb(pid) == 0 for pid in pids), 60, f"{name}'s replicas to stop"
        )

    def stop(self) -> list[str]:
        self.api.close()
        return procs.stop(self.proc, grace=30)


def _cpu_probe(serve_pid: int, replica_pid: int) -> drive.CpuProbe:
    """CPU of the replica, and of berth serve with everything else it runs (gateway workers,
    zygote)."""

    def probe() -> dict[str, float]:
        replica = procs.cpu_seconds([replica_pid])
        total = procs.cpu_seconds([serve_pid, replica_pid])
        return {"berth serve": total - replica, "replica": replica}

    return probe


def _overhead(url: str, samples: int) -> tuple[float, float]:
    headers = {**AUTH, "Content-Type": "application/json"}
    with httpx.Client(headers=headers) as client:
        values = sorted(
            float(client.post(url, content=DATAFRAME_SPLIT).headers["x-berth-overhead-ms"])
            for _ in range(samples)
        )
    return statistics.median(values), values[max(0, round(len(values) * 0.99) - 1)]


@dataclass
class BerthRun:
    model: Path
    scratch: Path
    concurrencies: list[int]
    seconds: int
    log: Callable[[str], None]
    profile_dir: Path | None = None
    profile_mode: str = "python"
    overhead_samples: int = 500
    figures: BerthFigures = field(default_factory=BerthFigures)

    def __post_init__(self) -> None:
        self.home = self.scratch / "berth-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        version = berth_version()
        self.base = ServerResult(
            "berth", "berth", version=version, notes=["1 replica (Small), through the gateway"]
        )
        self.batching = ServerResult(
            "berth-batching",
            "berth, batching",
            version=version,
            notes=["`max_batch_size` 32, `max_batch_wait_ms` 2"],
        )
        self.workers = ServerResult(
            "berth-gw2", "berth, 2 gateway workers", version=version, notes=["--gateway-workers 2"]
        )

    def run(self) -> list[ServerResult]:
        deployed = self._phase(self.base, self._fresh)
        if deployed:
            self._phase(self.base, self._restart)
            self._phase(self.workers, self._more_workers, ["--gateway-workers", "2"])
        else:
            for result in (self.batching, self.workers):
                result.status, result.reason = "failed", "berth's first phase failed"
        return [self.base, self.batching, self.workers]

    def _phase(
        self,
        result: ServerResult,
        body: Callable[[Server], None],
        extra: list[str] | None = None,
    ) -> bool:
        server = Server(self.home, self.port, extra)
        try:
            body(server)
            return True
        except Exception as exc:  # one failed phase is reported, the others still run
            code = server.proc.poll()
            if extra and code == 2 and "No such option" in log_tail(server.log, 40):
                result.status, result.reason = "n/a", f"berth serve refuses {' '.join(extra)}"
            else:
                result.status = "failed"
                result.reason = f"{type(exc).__name__}: {exc}"[:800]
            self.log(f"    {result.label}: {result.status}: {result.reason}")
            return False
        finally:
            killed = server.stop()
            if killed:
                note = f"needed SIGKILL to stop: {', '.join(sorted(set(killed)))}"
                result.notes.append(note)
                self.log(f"    {note}")

    def _fresh(self, server: Server) -> None:
        fig = self.figures
        self.log(f"  starting berth serve ({self.base.version})")
        fig.serve_start_s = server.wait_ready()
        self.log(f"    berth serve ready (/readyz) after {fig.serve_start_s:.2f} s")
        server.api.post("/api/2.0/models", json={"name": "iris"}).raise_for_status()
        server.api.post(
            "/api/2.0/models/iris/versions", json={"source": str(self.model)}
        ).raise_for_status()
        fig.first_deploy_s = server.deploy(ENDPOINT, {}, timeout=900)
        self.log(f"    create → READY, environment built: {fig.first_deploy_s:.2f} s")
        fig.cached_deploy_s = server.deploy(CACHED, {}, timeout=300)
        self.log(f"    create → READY, environment cached: {fig.cached_deploy_s:.2f} s")
        server.delete(CACHED)

        url = server.invocations(ENDPOINT)
        answer = first_predict(server.proc, url, DATAFRAME_SPLIT, server.log, 60, AUTH)
        if predictions(answer) != EXPECTED:
            self.base.notes.append(f"unexpected answer: {json.dumps(answer)[:200]}")
        (replica,) = server.replica_states(ENDPOINT)
        twin = twin_of(server.home, ENDPOINT)  # the replica's socket is private: a TCP twin
        direct = twin.url
        drive.warm_up(url, DATAFRAME_SPLIT, max(self.concurrencies), TOKEN)
        time.sleep(IDLE_S)
        self._memory(server, int(replica["pid"]))
        cpu = _cpu_probe(server.proc.pid, int(replica["pid"]))
        self.base.loads, self.base.load_errors = drive.measure(
            url, DATAFRAME_SPLIT, self.concurrencies, self.seconds, self.log, TOKEN, "gateway ", cpu
        )
        try:
            fig.direct, _ = drive.measure(
                direct,
                DATAFRAME_SPLIT,
                self.concurrencies,
                self.seconds,
                self.log,
                None,
                "straight ",
                _cpu_probe(server.proc.pid, twin.pid),
            )
        finally:
            twin.close()
        replicas = len(server.replica_states(ENDPOINT))
        if replicas != 1:
            self.base.notes.append(f"{replicas} replicas after the loads")
        fig.overhead_p50_ms, fig.overhead_p99_ms = _overhead(url, self.overhead_samples)
        fig.overhead_samples = self.overhead_samples
        self.log(
            f"    x-berth-overhead-ms over {self.overhead_samples} sequential requests: "
            f"p50 {fig.overhead_p50_ms:.3f}, p99 {fig.overhead_p99_ms:.3f}"
        )
        if self.profile_dir is not None:
            fig.profiles = profile.record(
                {"berth serve": server.proc.pid, "replica": int(replica["pid"])},
                lambda: drive.measure(
                    url, DATAFRAME_SPLIT, [8], self.seconds, self.log, TOKEN, "profiled "
                ),
                self.seconds,
                self.profile_dir,
                self.log,
                self.profile_mode,
            )
            fig.profile_mode = self.profile_mode
        self._batching(server)

    def _memory(self, server: Server, replica_pid: int) -> None:
        fig = self.figures
        total = procs.memory([server.proc.pid, replica_pid])
        fig.serve_rss_mb = procs.rss_mb(server.proc.pid)
        fig.replica_rss_mb = procs.rss_mb(replica_pid)
        fig.total_rss_mb, fig.total_pss_mb = total.rss_mb, total.pss_mb
        roles = {server.proc.pid: "berth serve", replica_pid: "replica"}
        fig.processes = [(pid, roles.get(pid, name), rss) for pid, name, rss in total.detail]
        self.base.rss_mb, self.base.pss_mb = total.rss_mb, total.pss_mb
        self.base.processes = total.processes
        self.log(
            f"    idle RSS: berth serve {fig.serve_rss_mb:.0f} MB, replica "
            f"{fig.replica_rss_mb:.0f} MB, total {total.rss_mb:.0f} MB "
            f"over {total.processes} processes"
        )

    def _batching(self, server: Server) -> None:
        result = self.batching
        answer = server.create(BATCHING, BATCH)
        if answer.status_code == 400:
            result.status, result.reason = "n/a", f"create refused: {answer.text[:300]}"
            self.log(f"    batching: n/a ({result.reason})")
            return
        try:
            answer.raise_for_status()
            server.wait_endpoint_ready(BATCHING, 300)
            url = server.invocations(BATCHING)
            first_predict(server.proc, url, DATAFRAME_SPLIT, server.log, 60, AUTH)
            top = max(self.concurrencies)
            drive.warm_up(url, DATAFRAME_SPLIT, top, TOKEN)
            (replica,) = server.replica_states(BATCHING)
            result.loads, result.load_errors = drive.measure(
                url,
                DATAFRAME_SPLIT,
                [top],
                self.seconds,
                self.log,
                TOKEN,
                "batching ",
                _cpu_probe(server.proc.pid, int(replica["pid"])),
            )
            server.delete(BATCHING)
        except Exception as exc:
            result.status, result.reason = "failed", f"{type(exc).__name__}: {exc}"[:800]
            self.log(f"    batching: failed: {result.reason}")

    def _restart(self, server: Server) -> None:
        first_predict(
            server.proc, server.invocations(ENDPOINT), DATAFRAME_SPLIT, server.log, 120, AUTH
        )
        self.base.cold_start_s = time.monotonic() - server.started
        self.log(
            f"    restarted berth serve: first predict after {self.base.cold_start_s:.2f} s "
            "(endpoint stored, environment cached)"
        )

    def _more_workers(self, server: Server) -> None:
        result = self.workers
        self.log("  berth serve --gateway-workers 2")
        url = server.invocations(ENDPOINT)
        first_predict(server.proc, url, DATAFRAME_SPLIT, server.log, 120, AUTH)
        result.cold_start_s = time.monotonic() - server.started
        drive.warm_up(url, DATAFRAME_SPLIT, max(self.concurrencies), TOKEN)
        time.sleep(IDLE_S)
        (replica,) = server.replica_states(ENDPOINT)
        memory = procs.memory([server.proc.pid, int(replica["pid"])])
        result.rss_mb, result.pss_mb, result.processes = (
            memory.rss_mb,
            memory.pss_mb,
            memory.processes,
        )
        result.loads, result.load_errors = drive.measure(
            url,
            DATAFRAME_SPLIT,
            self.concurrencies,
            self.seconds,
            self.log,
            TOKEN,
            "gw2 ",
            _cpu_probe(server.proc.pid, int(replica["pid"])),
        )
