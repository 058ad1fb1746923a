"""Benchmark: berth against its peers, serving the same scikit-learn model on this machine.

Trains an iris classifier, saves it once as an MLflow model, then one server after the other:
berth (``berth serve``, the model registered and deployed through its API, measured through
the gateway; also with batching and with 2 gateway workers), ``mlflow models serve``, MLServer,
BentoML, Ray Serve and a bare Starlette app on uvicorn. Each peer runs from its own uv venv
(cached under ~/.cache/berth-bench/venvs). Per server: wrk at each concurrency, cold start,
idle memory of its whole process tree. Prints markdown tables and the ratios against berth's
targets; ``--out`` writes JSON, ``--markdown`` the benchmark page, ``--profile`` py-spy
profiles of the gateway and the replica under load.

Run: ``./uvw run python bench/peers.py [--seconds 10] [--only berth,bare,...]
[--out results.json] [--markdown docs/benchmarks.md] [--profile [python|native]]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_bench import profile, report  # noqa: E402
from peer_bench.berth_run import BerthFigures, BerthRun  # noqa: E402
from peer_bench.common import APPS, ServerResult, concurrencies, log, run  # noqa: E402
from peer_bench.peers import PEERS, measure_peer  # noqa: E402
from peer_bench.venvs import CACHE, MODEL_STACK, ensure_venv  # noqa: E402
from wrk import ensure_wrk  # noqa: E402

SERVERS = ("berth", *PEERS)


def train(scratch: Path) -> Path:
    """Fit the model in the mlflow venv and save it as an MLflow model; returns its folder."""
    venv = ensure_venv("mlflow", log)
    out = scratch / "trained"
    done = subprocess.run(
        [str(venv.python), str(APPS / "train_model.py"), str(out), *MODEL_STACK],
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"training the model failed:\n{done.stderr[-2000:]}")
    return out / "model"


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _only(text: str) -> list[str]:
    chosen = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(chosen) - set(SERVERS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {', '.join(SERVERS)}")
    return chosen


def benchmark() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per run")
    parser.add_argument("--concurrency", type=concurrencies, default=[1, 8, 64])
    parser.add_argument(
        "--only", type=_only, default=list(SERVERS), help=f"subset of {','.join(SERVERS)}"
    )
    parser.add_argument("--out", type=Path, help="write every figure as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the benchmark page here")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="python",
        choices=sorted(profile.MODES),
        help="py-spy berth serve and its replica in an extra c=8 run (python: Python frames, "
        "the default; native: C frames too, slows the process a lot)",
    )
    parser.add_argument(
        "--profile-dir", type=Path, default=CACHE / "profile", help="where py-spy writes"
    )
    parser.add_argument("--overhead-samples", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    args = parser.parse_args()
    command = shlex.join(["./uvw", "run", "python", "bench/peers.py", *sys.argv[1:]])

    signal.signal(signal.SIGTERM, _interrupt)
    ensure_wrk()
    started = time.monotonic()
    results: list[ServerResult] = []
    figures: BerthFigures | None = None
    scratch = Path(tempfile.mkdtemp(prefix="berth-peers-"))
    try:
        log(f"scratch folder {scratch}; training the model")
        model = train(scratch)
        for key in SERVERS:
            if key not in args.only:
                continue
            log(f"[{time.monotonic() - started:5.0f} s] {key}")
            if key == "berth":
                berth = BerthRun(
                    model,
                    scratch,
                    args.concurrency,
                    args.seconds,
                    log,
                    profile_dir=args.profile_dir.resolve() if args.profile else None,
                    profile_mode=args.profile or "python",
                    overhead_samples=args.overhead_samples,
                )
                results += berth.run()
                figures = berth.figures
            else:
                results.append(
                    measure_peer(PEERS[key], model, scratch, args.concurrency, args.seconds, log)
                )
    finally:
        if args.keep:
            log(f"scratch folder kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    log(f"done in {time.monotonic() - started:.0f} s")

    by_key = {r.key: r for r in results}
    items = report.ratios(by_key, figures, args.concurrency)
    info = report.machine()
    print("\n".join(report.rps_table(results, args.concurrency)))
    print()
    print("\n".join(report.loads_table(results, args.concurrency)))
    print()
    print("\n".join(report.startup_table(results)))
    if figures is not None:
        print()
        print("\n".join(report.berth_lines(figures, by_key.get("berth"))))
    print()
    print("\n".join(report.ratio_lines(items)))
    failed = [r for r in results if r.status != "ok"]
    for r in failed:
        print(f"{r.label}: {r.status}: {r.reason}")
    if args.out:
        document = {
            "command": command,
            "machine": info,
            "seconds": args.seconds,
            "concurrency": args.concurrency,
            "servers": [r.to_json() for r in results],
            "berth": figures.to_json() if figures else None,
            "ratios": [r.to_json() for r in items],
        }
        args.out.write_text(json.dumps(document, indent=2) + "\n")
        log(f"wrote {args.out}")
    if args.markdown:
        page = report.markdown(
            results,
            figures,
            items,
            info,
            command,
            args.concurrency,
            args.seconds,
            args.markdown.parent,
        )
        args.markdown.write_text(page)
        log(f"wrote {args.markdown}")


if __name__ == "__main__":
    run(benchmark)
