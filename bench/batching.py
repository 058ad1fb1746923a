"""Benchmark: one replica of an MLflow scikit-learn model, with and without adaptive batching.

Builds a model environment with uv (scikit-learn, MLflow skinny, pandas), saves the iris model
the tests use, starts ``python -m berth.runtime`` twice (``--max-batch-size 1`` and 16, both
``--max-concurrency 32``) and drives each straight, without the gateway, with wrk at
concurrency 1, 32 and 64. Prints requests/s, p50/p99 and the mean batch size the replica
reports. Run: ``./uvw run python bench/batching.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wrk import Result, run  # noqa: E402

from berth.envs import find_uv  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
BODY = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, 0.2]]}})
PACKAGES = ["scikit-learn==1.6.1", "mlflow-skinny==3.17.2", "pandas"]


def model_env(root: Path) -> Path:
    uv, venv = str(find_uv()), root / "venv"
    subprocess.run([uv, "venv", "-q", "--python", "3.11", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([uv, "pip", "install", "-q", "--python", str(python), *PACKAGES], check=True)
    script = ROOT / "tests" / "fakes" / "make_sklearn_model.py"
    subprocess.run([python, script, root], check=True, capture_output=True)
    return python


def start(python: Path, root: Path, name: str, batch: int) -> tuple[subprocess.Popen[bytes], str]:
    port_file = root / f"{name}.port"
    flags = ["--max-concurrency", "32", "--max-batch-size", str(batch), "--max-batch-wait-ms", "5"]
    proc = subprocess.Popen(
        [python, "-m", "berth.runtime", "--artifact", root / "model", "--format", "mlflow"]
        + ["--port-file", port_file, *flags],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=(root / f"{name}.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if port_file.exists():
            url = f"http://127.0.0.1:{port_file.read_text()}"
            try:
                if httpx.get(f"{url}/health").is_success:
                    return proc, url
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    raise TimeoutError(f"the {name} replica did not load; see {root / name}.log")


def line(name: str, result: Result, batch: float) -> str:
    return (
        f"{name:9} c={result.concurrency:<3} {result.rps:8.0f} req/s  p50 {result.p50_ms:7.2f} ms"
        f"  p99 {result.p99_ms:7.2f} ms  mean batch {batch:5.1f}  errors {result.errors}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        root = Path(tmp)
        python = model_env(root)
        rps: dict[tuple[str, int], float] = {}
        for name, batch in (("unbatched", 1), ("batched", 16)):
            proc, url = start(python, root, name, batch)
            try:
                for concurrency in (1, 32, 64):
                    run(f"{url}/invocations", BODY, concurrency, 2)  # warm up
                    before = httpx.get(f"{url}/metrics").json()["batch_size"]
                    result = run(f"{url}/invocations", BODY, concurrency, args.seconds)
                    after = httpx.get(f"{url}/metrics").json()["batch_size"]
                    calls = after["count"] - before["count"]
                    batch_mean = (after["sum"] - before["sum"]) / calls if calls else 1.0
                    rps[name, concurrency] = result.rps
                    print(line(name, result, batch_mean), flush=True)
            finally:
                proc.terminate()
                proc.wait()
        for concurrency in (1, 32, 64):
            ratio = rps["batched", concurrency] / rps["unbatched", concurrency]
            print(f"batched / unbatched at c={concurrency}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
