"""Benchmark: what inference tables cost a request, capture on vs off, side by side.

Starts a real ``berth serve`` on a scratch BERTH_HOME and deploys the bundled iris model as two
endpoints, one with ``inference_table_config`` on (every request captured to Parquet) and one
without, then drives them in turns with wrk (same process, same replica kind, alternating runs
so drift hits both) at concurrency 1 and 8. Prints p50/p99 and requests/s, and the rows the
writer wrote. Run: ``./uvw run python bench/capture.py [--seconds 10] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import BODY, ROOT, TOKEN, start_berth, wait  # noqa: E402
from wrk import Result, run  # noqa: E402


def deploy(api: httpx.Client, name: str, capture: bool) -> None:
    api.post("/api/2.0/models", json={"name": name}).raise_for_status()
    source = str(ROOT / "src" / "berth" / "demo" / "iris_model")
    api.post(f"/api/2.0/models/{name}/versions", json={"source": source}).raise_for_status()
    body = {
        "name": name,
        "config": {"served_entities": [{"entity_name": name, "entity_version": "1"}]},
        "ai_gateway": {"inference_table_config": {"enabled": capture}},
    }
    api.post("/api/2.0/serving-endpoints", json=body).raise_for_status()
    wait(
        lambda: api.get(f"/api/2.0/serving-endpoints/{name}").json()["state"]["ready"] == "READY",
        120,
        f"{name} to be READY",
    )


def median(results: list[Result], field: str) -> float:
    return statistics.median(getattr(r, field) for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-bench-capture-") as tmp:
        home = Path(tmp)
        proc, url = start_berth(home)
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        try:
            deploy(api, "plain", capture=False)
            deploy(api, "captured", capture=True)
            print("| capture | concurrency | req/s | p50 ms | p99 ms | errors |")
            print("| --- | --- | --- | --- | --- | --- |")
            for concurrency in (1, 8):
                runs: dict[str, list[Result]] = {"off": [], "on": []}
                for _ in range(args.rounds):
                    for label, name in (("off", "plain"), ("on", "captured")):
                        target = f"{url}/serving-endpoints/{name}/invocations"
                        runs[label].append(run(target, BODY, concurrency, args.seconds, TOKEN))
                for label in ("off", "on"):
                    found = runs[label]
                    print(
                        f"| {label} | {concurrency} | {median(found, 'rps'):,.0f} "
                        f"| {median(found, 'p50_ms'):.3f} | {median(found, 'p99_ms'):.3f} "
                        f"| {sum(r.errors for r in found)} |"
                    )
                ratio = median(runs["on"], "p50_ms") / median(runs["off"], "p50_ms")
                print(f"|   p50 on/off | {concurrency} | {ratio:.3f}x | | | |")
            written = api.get("/api/2.0/serving-endpoints/captured/payloads", params={"limit": 1})
            written.raise_for_status()
            scraped = api.get("/metrics").text
            rows = [line for line in scraped.splitlines() if line.startswith("berth_capture_rows")]
            print("\n" + "\n".join(rows))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
