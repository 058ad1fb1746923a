"""The peers berth is compared with, each started from its own venv the way its docs say, with
one worker / replica and access logs off, and measured the same way."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import drive, procs
from .common import (
    APPS,
    COLUMNS_DATA,
    DATAFRAME_SPLIT,
    EXPECTED,
    V2_TENSOR,
    ServerResult,
    StartFailed,
    first_predict,
    free_port,
    launch,
    predictions,
)
from .venvs import Venv, ensure_venv

IDLE_S = 2.0


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class Where:
    """What a peer's command needs: its venv, its port, the model and a scratch folder."""

    venv: Venv
    port: int
    model: Path  # the MLflow model folder; model.pkl in it is the fitted estimator
    scratch: Path


@dataclass(frozen=True)
class Peer:
    key: str
    label: str
    venv: str
    distributions: tuple[str, ...]
    path: str
    body: str
    start_timeout: float
    command: Callable[[Where], Launch]
    notes: tuple[str, ...] = ()


def _mlflow(w: Where) -> Launch:
    argv = [str(w.venv.bin / "mlflow"), "models", "serve", "-m", str(w.model)]
    argv += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(w.port), "-w", "1"]
    env = {
        # `mlflow models serve` execs `uvicorn` from PATH.
        "PATH": f"{w.venv.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "UVICORN_ACCESS_LOG": "false",
    }
    return Launch(argv, env, w.scratch)


def _mlserver(w: Where) -> Launch:
    root = w.scratch / "mlserver"
    (root / "iris").mkdir(parents=True, exist_ok=True)
    settings = {
        "parallel_workers": 0,
        "debug": False,
        "host": "127.0.0.1",
        "http_port": w.port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
    }
    model = {
        "name": "iris",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(w.model / "model.pkl")},
    }
    (root / "settings.json").write_text(json.dumps(settings))
    (root / "iris" / "model-settings.json").write_text(json.dumps(model))
    # A V2 tensor has no column names: sklearn's warning about it is silenced, as the other
    # peers that predict on arrays do.
    env = {"PYTHONWARNINGS": "ignore:X does not have valid feature names"}
    return Launch([str(w.venv.bin / "mlserver"), "start", str(root)], env, w.scratch)


def _bentoml(w: Where) -> Launch:
    argv = [str(w.venv.bin / "bentoml"), "serve", "bento_service:Iris"]
    argv += ["--host", "127.0.0.1", "--port", str(w.port)]
    env = {
        "BENCH_MODEL_PKL": str(w.model / "model.pkl"),
        "BENTOML_DO_NOT_TRACK": "true",
        "BENTOML_HOME": str(w.scratch / "bentoml-home"),
    }
    return Launch(argv, env, APPS)


def _ray(w: Where) -> Launch:
    temp = w.scratch / "ray"
    temp.mkdir(exist_ok=True)
    argv = [str(w.venv.python), str(APPS / "ray_serve_app.py"), str(w.port), str(temp)]
    env = {
        "BENCH_MODEL_PKL": str(w.model / "model.pkl"),
        "RAY_USAGE_STATS_ENABLED": "0",
        # Under `uv run` (this script's parent), Ray would ship the working folder and run
        # workers with `uv run`; the venv is already what the workers need.
        "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
    }
    return Launch(argv, env, w.scratch)


def _bare(w: Where) -> Launch:
    argv = [str(w.venv.bin / "uvicorn"), "bare_app:app", "--app-dir", str(APPS)]
    argv += ["--host", "127.0.0.1", "--port", str(w.port), "--workers", "1"]
    argv += ["--no-access-log", "--log-level", "warning"]
    return Launch(argv, {"BENCH_MODEL_PKL": str(w.model / "model.pkl")}, w.scratch)


PEERS: dict[str, Peer] = {
    peer.key: peer
    for peer in (
        Peer(
            "bare",
            "bare uvicorn",
            "bare",
            ("uvicorn", "starlette"),
            "/predict",
            COLUMNS_DATA,
            60,
            _bare,
            ("Starlette app, 1 uvicorn worker (uvloop, httptools), predict on the event loop",),
        ),
        Peer(
            "mlflow",
            "mlflow models serve",
            "mlflow",
            ("mlflow",),
            "/invocations",
            DATAFRAME_SPLIT,
            120,
            _mlflow,
            ("`--env-manager local -w 1`; loads the MLflow model",),
        ),
        Peer(
            "mlserver",
            "MLServer",
            "mlserver",
            ("mlserver", "mlserver-sklearn"),
            "/v2/models/iris/infer",
            V2_TENSOR,
            120,
            _mlserver,
            ("sklearn runtime, `parallel_workers: 0`, V2 body: one FP64 tensor [1, 4]",),
        ),
        Peer(
            "bentoml",
            "BentoML",
            "bentoml",
            ("bentoml",),
            "/predict",
            COLUMNS_DATA,
            120,
            _bentoml,
            ("`@bentoml.service(workers=1)`, sync API method (thread pool), access log off",),
        ),
        Peer(
            "ray",
            "Ray Serve",
            "ray",
            ("ray",),
            "/predict",
            COLUMNS_DATA,
            180,
            _ray,
            (
                "one replica (default `max_ongoing_requests`, 5), async `__call__`, access log "
                "off, a local Ray started by the driver",
            ),
        ),
    )
}


def measure_peer(
    peer: Peer,
    model: Path,
    scratch: Path,
    concurrencies: list[int],
    seconds: int,
    log: Callable[[str], None],
) -> ServerResult:
    """Start ``peer``, time its first prediction, read its idle memory, drive it, stop it."""
    result = ServerResult(peer.key, peer.label, notes=list(peer.notes))
    try:
        venv = ensure_venv(peer.venv, log)
        result.version = ", ".join(f"{d} {venv.version(d)}" for d in peer.distributions)
    except Exception as exc:
        result.status, result.reason = "failed", f"venv: {exc}"[:500]
        return result
    folder = scratch / peer.key
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    spec = peer.command(Where(venv, port, model, folder))
    url = f"http://127.0.0.1:{port}{peer.path}"
    server_log = folder / "server.log"
    log(f"  starting {peer.label} ({result.version})")
    started = time.monotonic()
    proc = launch(spec.argv, spec.env, spec.cwd, server_log)
    try:
        answer = first_predict(proc, url, peer.body, server_log, peer.start_timeout)
        result.cold_start_s = time.monotonic() - started
        if predictions(answer) != EXPECTED:
            result.notes.append(f"unexpected answer: {json.dumps(answer)[:200]}")
        log(f"    first predict after {result.cold_start_s:.2f} s")
        drive.warm_up(url, peer.body, max(concurrencies))
        time.sleep(IDLE_S)
        memory = procs.memory([proc.pid])
        result.rss_mb, result.pss_mb = memory.rss_mb, memory.pss_mb
        result.processes = memory.processes
        log(f"    idle RSS {memory.rss_mb:.0f} MB over {memory.processes} processes")
        result.loads, result.load_errors = drive.measure(
            url,
            peer.body,
            concurrencies,
            seconds,
            log,
            cpu=lambda: {"server": procs.cpu_seconds([proc.pid])},
        )
    except (StartFailed, TimeoutError) as exc:
        result.status, result.reason = "failed", str(exc)[:800]
        log(f"    FAILED: {result.reason}")
    finally:
        killed = procs.stop(proc)
        if killed:
            note = f"needed SIGKILL to stop: {', '.join(sorted(set(killed)))}"
            result.notes.append(note)
            log(f"    {note}")
    return result
