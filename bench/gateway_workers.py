"""Benchmark: queries through ``berth serve`` alone vs ``--gateway-workers N``.

For each N, starts a real ``berth serve`` on a scratch BERTH_HOME, deploys the bundled iris model
on a ``Medium`` entity (4 replicas, so the replicas are not what is measured), and drives the
public port with wrk. Workers only pay off with cores to spare: wrk, the replicas and the
workers share this machine's. Run: ``./uvw run python bench/gateway_workers.py [--workers 0 1 2]
[--seconds 10] [--concurrency 64]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import BODY, ROOT, TOKEN, free_port, wait  # noqa: E402
from wrk import run  # noqa: E402


def start(home: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "BERTH_HOME": str(home), "BERTH_ADMIN_TOKEN": TOKEN}
    args = ["serve", "--port", str(port), "--gateway-workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "berth", *args],
        env=env,
        stdout=(home / "server.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)

    def serving() -> bool:
        try:
            text = api.get("/metrics").text
        except httpx.HTTPError:
            return False
        return workers == 0 or f"berth_gateway_workers {workers}.0" in text

    wait(serving, 90, f"berth with {workers} gateway workers to serve")
    api.post("/api/2.0/models", json={"name": "iris"}).raise_for_status()
    source = str(ROOT / "src" / "berth" / "demo" / "iris_model")
    api.post("/api/2.0/models/iris/versions", json={"source": source}).raise_for_status()
    entity = {"entity_name": "iris", "entity_version": "1", "workload_size": "Medium"}
    config = {"served_entities": [entity]}
    api.post(
        "/api/2.0/serving-endpoints", json={"name": "iris", "config": config}
    ).raise_for_status()
    wait(
        lambda: api.get("/api/2.0/serving-endpoints/iris").json()["state"]["ready"] == "READY",
        120,
        "the endpoint to be READY",
    )
    return proc, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; wrk -c{args.concurrency} -d{args.seconds}s")
    print("| gateway workers | req/s | p50 ms | p99 ms | errors | vs one process |")
    print("| --- | --- | --- | --- | --- | --- |")
    alone = None
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
            proc, url = start(Path(tmp), workers)
            try:
                gateway = f"{url}/serving-endpoints/iris/invocations"
                run(gateway, BODY, args.concurrency, 2, TOKEN)  # warm the pools
                r = run(gateway, BODY, args.concurrency, args.seconds, TOKEN)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        alone = alone or r.rps
        print(
            f"| {workers} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} "
            f"| {r.rps / alone:.2f}x |"
        )


if __name__ == "__main__":
    main()
