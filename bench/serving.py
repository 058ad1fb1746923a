"""Benchmark: one-row predict through berth's gateway vs straight to the replica.

Starts a real ``berth serve`` on a scratch BERTH_HOME, deploys the bundled iris model (one
Small replica), then drives both addresses with wrk at concurrency 1, 8 and 64, and samples
``x-berth-overhead-ms``. Run: ``./uvw run python bench/serving.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from replica_twin import twin_of  # noqa: E402
from wrk import Result, run  # noqa: E402

TOKEN = "bth_bench-token"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
BODY = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]]}})
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def start_berth(home: Path, **extra_env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "BERTH_HOME": str(home), "BERTH_ADMIN_TOKEN": TOKEN, **extra_env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "berth", "serve", "--port", str(port)],
        env=env,
        stdout=(home / "server.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    wait(ready, 60, "berth to start")
    return proc, url


def deploy(url: str) -> None:
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    api.post("/api/2.0/models", json={"name": "iris"}).raise_for_status()
    source = str(ROOT / "src" / "berth" / "demo" / "iris_model")
    api.post("/api/2.0/models/iris/versions", json={"source": source}).raise_for_status()
    config = {"served_entities": [{"entity_name": "iris", "entity_version": "1"}]}
    api.post(
        "/api/2.0/serving-endpoints", json={"name": "iris", "config": config}
    ).raise_for_status()
    wait(
        lambda: api.get("/api/2.0/serving-endpoints/iris").json()["state"]["ready"] == "READY",
        60,
        "the endpoint to be READY",
    )


def overhead_ms(url: str, samples: int) -> tuple[float, float]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(headers=headers) as client:
        values = sorted(
            float(client.post(url, content=BODY).headers["x-berth-overhead-ms"])
            for _ in range(samples)
        )
    return statistics.median(values), values[int(len(values) * 0.99) - 1]


def row(label: str, r: Result) -> str:
    return (
        f"| {label} | {r.concurrency} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
        f"| {r.errors} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        home = Path(tmp)
        proc, url = start_berth(home)
        twin = None
        try:
            deploy(url)
            gateway = f"{url}/serving-endpoints/iris/invocations"
            twin = twin_of(home, "iris")
            direct = twin.url
            print("| path | concurrency | req/s | p50 ms | p99 ms | errors |")
            print("| --- | --- | --- | --- | --- | --- |")
            for concurrency in (1, 8, 64):
                through = run(gateway, BODY, concurrency, args.seconds, TOKEN)
                straight = run(direct, BODY, concurrency, args.seconds)
                print(row("berth gateway", through))
                print(row("replica direct", straight))
                added_p50 = through.p50_ms - straight.p50_ms
                added_p99 = through.p99_ms - straight.p99_ms
                print(
                    f"|   ratio | {concurrency} | {through.rps / straight.rps:.2f}x "
                    f"| +{added_p50:.2f} | +{added_p99:.2f} | |"
                )
            p50, p99 = overhead_ms(gateway, 2000)
            print(
                f"\nx-berth-overhead-ms over 2000 sequential requests: p50 {p50:.3f}, p99 {p99:.3f}"
            )
        finally:
            if twin is not None:
                twin.close()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
