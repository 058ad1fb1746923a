"""Benchmark: deploying a model that needs its own environment, first build and cached.

Trains a scikit-learn model in a venv of its own (as a user would), then on a scratch
``berth serve``: registers it and a dependency-free score.py model, and times create → READY
for (1) the sklearn endpoint with an empty environment cache, (2) a second sklearn endpoint
(cached environment), (3) the score.py endpoint; then (4) scale from zero: a sklearn endpoint
with scale to zero idles down to no replica, and the first request's time is its cold start.
Run: ``./uvw run python bench/envs.py``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import COLUMNS, ROOT, TOKEN, start_berth, wait  # noqa: E402

from berth.envs import find_uv  # noqa: E402


def train(root: Path) -> Path:
    venv, uv = root / "venv", str(find_uv())
    subprocess.run([uv, "venv", "-q", "--python", "3.11", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            python,
            "scikit-learn==1.6.1",
            "mlflow-skinny==3.17.2",
            "pandas",
        ],
        check=True,
    )
    script = ROOT / "tests" / "fakes" / "make_sklearn_model.py"
    subprocess.run([python, str(script), str(root)], check=True, capture_output=True)
    return root / "model"


def deploy_seconds(api: httpx.Client, name: str, model: str, **fields: object) -> float:
    config = {"served_entities": [{"entity_name": model, "entity_version": "1", **fields}]}
    started = time.perf_counter()
    api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config}).raise_for_status()
    wait(
        lambda: api.get(f"/api/2.0/serving-endpoints/{name}").json()["state"]["ready"] == "READY",
        600,
        f"{name} to be READY",
    )
    return time.perf_counter() - started


def cold_starts(api: httpx.Client, model: str, times: int = 3) -> list[float]:
    """Seconds from a request to its answer while the endpoint is scaled to zero."""
    deploy_seconds(api, "sk-zero", model, scale_to_zero_enabled=True, scale_to_zero_idle_seconds=1)
    body = {"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]]}}
    seconds = []
    for _ in range(times):
        wait(lambda: scaled_to_zero(api, "sk-zero"), 60, "sk-zero to scale to zero")
        started = time.perf_counter()
        api.post("/serving-endpoints/sk-zero/invocations", json=body).raise_for_status()
        seconds.append(time.perf_counter() - started)
    return seconds


def scaled_to_zero(api: httpx.Client, name: str) -> bool:
    entity = api.get(f"/api/2.0/serving-endpoints/{name}").json()["config"]["served_entities"][0]
    return bool(entity.get("current_replicas") == 0 and entity.get("desired_replicas") == 0)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="berth-bench-envs-") as tmp:
        root = Path(tmp)
        model = train(root / "trainer")
        home = root / "home"
        home.mkdir()
        proc, url = start_berth(home)
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        try:
            for name, source in (("sk", model), ("plain", ROOT / "src/berth/demo/iris_model")):
                api.post("/api/2.0/models", json={"name": name}).raise_for_status()
                api.post(f"/api/2.0/models/{name}/versions", json={"source": str(source)})
            first = deploy_seconds(api, "sk-first", "sk")
            cached = deploy_seconds(api, "sk-cached", "sk")
            plain = deploy_seconds(api, "plain", "plain")
            colds = cold_starts(api, "sk")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print("| deploy (create → READY) | seconds |")
    print("| --- | --- |")
    print(f"| scikit-learn model, first build of its environment | {first:.2f} |")
    print(f"| scikit-learn model, environment cached | {cached:.2f} |")
    print(f"| score.py model, no dependencies | {plain:.2f} |")
    for i, cold in enumerate(colds, 1):
        print(f"| scikit-learn model, scale from zero #{i} (first request answered) | {cold:.2f} |")
    print(f"\ncached sklearn deploy - score.py deploy = {cached - plain:+.2f} s (target ≤ 2 s)")
    print(f"scale from zero: worst {max(colds):.2f} s of {len(colds)} (target < 2 s)")


if __name__ == "__main__":
    main()
