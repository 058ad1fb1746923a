"""The comparison's figures as markdown tables, the ratios against berth's targets, a Mermaid
bar chart, the machine it ran on, and the whole as JSON."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import profile
from .berth_run import BerthFigures
from .common import ServerResult
from .venvs import MODEL_STACK

PEER_KEYS = ("mlflow", "mlserver", "bentoml", "ray")


@dataclass(frozen=True)
class Ratio:
    name: str
    value: float | None
    unit: str  # "x", "ms", "s", "MB"
    target: str  # e.g. ">= 2", "<= 0.5"; "" for figures shown for information
    detail: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None or not self.target:
            return None
        op, bound = self.target.split()
        return self.value >= float(bound) if op == ">=" else self.value <= float(bound)

    @property
    def shown(self) -> str:
        if self.value is None:
            return "n/a"
        if self.unit == "x":
            return f"{self.value:.2f}×"
        return f"{self.value:.2f} {self.unit}" if self.unit != "MB" else f"{self.value:.0f} MB"

    @property
    def target_shown(self) -> str:
        if not self.target:
            return ""
        op, bound = self.target.split()
        unit = "×" if self.unit == "x" else f" {self.unit}"
        return f"{op.replace('>=', '≥').replace('<=', '≤')} {bound}{unit}"

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**missed**", None: ""}[self.met]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "met": self.met,
            "detail": self.detail,
        }


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def ratios(
    servers: dict[str, ServerResult], berth: BerthFigures | None, concurrencies: list[int]
) -> list[Ratio]:
    out: list[Ratio] = []
    base = servers.get("berth")
    ok = {k: s for k, s in servers.items() if s.status == "ok"}
    for c in (8, 64):
        if c not in concurrencies:
            continue
        mine = base.rps(c) if base and base.status == "ok" else None
        peers = [(s.rps(c), s.label) for k, s in ok.items() if k in PEER_KEYS and s.rps(c)]
        if peers:
            best, best_label = max(peers, key=lambda p: p[0] or 0.0)
            out.append(
                Ratio(
                    f"berth / best peer, req/s at c={c}",
                    _div(mine, best),
                    "x",
                    ">= 2",
                    f"best peer: {best_label}, {best:,.0f} req/s",
                )
            )
        bare = ok["bare"].rps(c) if "bare" in ok else None
        out.append(Ratio(f"berth / bare uvicorn, req/s at c={c}", _div(mine, bare), "x", ">= 0.7"))
    if berth is not None and base is not None and 1 in base.loads and 1 in berth.direct:
        added = base.loads[1].p50_ms - berth.direct[1].p50_ms
        out.append(
            Ratio(
                "berth added latency p50 at c=1 (gateway − replica straight, wrk)",
                added,
                "ms",
                "<= 0.5",
            )
        )
    if berth is not None:
        out.append(
            Ratio(
                f"x-berth-overhead-ms p50 at c=1 ({berth.overhead_samples} requests)",
                berth.overhead_p50_ms,
                "ms",
                "<= 0.5",
                "" if berth.overhead_p99_ms is None else f"p99 {berth.overhead_p99_ms:.3f} ms",
            )
        )
    top = max(concurrencies)
    batching = servers.get("berth-batching")
    if batching is not None and base is not None:
        out.append(
            Ratio(
                f"berth batching / berth, req/s at c={top}",
                _div(batching.rps(top), base.rps(top)) if batching.status == "ok" else None,
                "x",
                ">= 3",
                batching.reason if batching.status != "ok" else "",
            )
        )
    if berth is not None:
        out.append(Ratio("create → READY, environment cached", berth.cached_deploy_s, "s", "<= 2"))
        out.append(Ratio("berth serve idle RSS", berth.serve_rss_mb, "MB", "<= 150"))
        bare_rss = ok["bare"].rss_mb if "bare" in ok else None
        out.append(
            Ratio(
                "replica RSS / bare uvicorn RSS",
                _div(berth.replica_rss_mb, bare_rss),
                "x",
                "<= 1.1",
                ""
                if berth.replica_rss_mb is None or bare_rss is None
                else f"{berth.replica_rss_mb:.0f} MB / {bare_rss:.0f} MB",
            )
        )
    workers = servers.get("berth-gw2")
    if workers is not None and base is not None:
        for c in (8, 64):
            if c in concurrencies:
                value = _div(workers.rps(c), base.rps(c)) if workers.status == "ok" else None
                out.append(
                    Ratio(
                        f"berth 2 gateway workers / berth, req/s at c={c}",
                        value,
                        "x",
                        "",
                        workers.reason if workers.status != "ok" else "",
                    )
                )
    if berth is not None and base is not None:
        for c in (8, 64):
            if c in berth.direct and c in base.loads:
                out.append(
                    Ratio(
                        f"berth gateway / replica straight, req/s at c={c}",
                        _div(base.loads[c].rps, berth.direct[c].rps),
                        "x",
                        "",
                    )
                )
    return out


def machine() -> dict[str, str]:
    def first(path: str, prefix: str) -> str:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            return "unknown"
        found = next((line for line in lines if line.startswith(prefix)), None)
        return "unknown" if found is None else found.split(":", 1)[1].strip()

    model = first("/proc/cpuinfo", "model name")
    mem_kb = first("/proc/meminfo", "MemTotal").split()[0]
    memory = f"{int(mem_kb) / 1024**2:.0f} GiB" if mem_kb.isdigit() else "unknown"
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    found = re.search(r"wrk \S+", wrk.stdout + wrk.stderr)
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "wrk": found.group(0) if found else "wrk",
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _cell(value: float | None, fmt: str = "{:.2f}") -> str:
    return "—" if value is None else fmt.format(value)


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def loads_table(results: list[ServerResult], concurrencies: list[int]) -> list[str]:
    rows = []
    for r in results:
        if r.status != "ok":
            rows.append([r.label, "—", r.status, "", "", "", ""])
            continue
        for c in concurrencies:
            load = r.loads.get(c)
            if load is not None:
                rows.append(
                    [
                        r.label,
                        str(c),
                        f"{load.rps:,.0f}",
                        _ms(load.p50_ms),
                        _ms(load.p99_ms),
                        load.errors_text,
                        _cell(load.cpu_ms_total),
                    ]
                )
            elif c in r.load_errors:
                rows.append([r.label, str(c), "failed", "", "", r.load_errors[c][:80], ""])
    header = ["server", "concurrency", "req/s", "p50 ms", "p99 ms", "errors", "CPU ms/req"]
    return _table(header, rows)


def rps_table(results: list[ServerResult], concurrencies: list[int]) -> list[str]:
    rows = []
    for r in results:
        cells = [
            f"{r.loads[c].rps:,.0f}" if c in r.loads else ("—" if r.status == "ok" else r.status)
            for c in concurrencies
        ]
        rows.append([r.label, *cells])
    return _table(["server", *(f"req/s c={c}" for c in concurrencies)], rows)


def startup_table(results: list[ServerResult]) -> list[str]:
    rows = []
    for r in results:
        if r.key == "berth-batching":
            continue
        rows.append(
            [
                r.label,
                r.version,
                _cell(r.cold_start_s),
                _cell(r.rss_mb, "{:.0f}"),
                _cell(r.pss_mb, "{:.0f}"),
                "—" if r.processes is None else str(r.processes),
            ]
        )
    header = ["server", "version", "cold start s", "idle RSS MB", "idle PSS MB", "processes"]
    return _table(header, rows)


def ratios_table(items: list[Ratio]) -> list[str]:
    rows = [[r.name, r.shown, r.target_shown, r.verdict, r.detail] for r in items]
    return _table(["figure", "value", "target", "", "detail"], rows)


def berth_lines(berth: BerthFigures, base: ServerResult | None) -> list[str]:
    out = [
        f"- `berth serve` start → `/readyz` (fresh BERTH_HOME, migrations): "
        f"{_cell(berth.serve_start_s)} s",
        f"- create → READY, environment built by uv (uv's download cache warm): "
        f"{_cell(berth.first_deploy_s)} s",
        f"- create → READY, environment cached (a second endpoint of the same model): "
        f"{_cell(berth.cached_deploy_s)} s",
        f"- `berth serve` launched with the endpoint stored and its environment cached → first "
        f"predict through the gateway: {_cell(base.cold_start_s if base else None)} s",
        f"- idle RSS: `berth serve` {_cell(berth.serve_rss_mb, '{:.0f}')} MB, replica "
        f"{_cell(berth.replica_rss_mb, '{:.0f}')} MB, total {_cell(berth.total_rss_mb, '{:.0f}')}"
        f" MB (PSS {_cell(berth.total_pss_mb, '{:.0f}')} MB): "
        + ", ".join(f"{name} {rss:.0f} MB" for _, name, rss in berth.processes),
        f"- `x-berth-overhead-ms` over {berth.overhead_samples} sequential requests: "
        f"p50 {_cell(berth.overhead_p50_ms, '{:.3f}')} ms, "
        f"p99 {_cell(berth.overhead_p99_ms, '{:.3f}')} ms",
    ]
    if base is None or not berth.direct:
        return out
    rows = []
    for c, straight in sorted(berth.direct.items()):
        through = base.loads.get(c)
        if through is None:
            continue
        rows.append(
            [
                str(c),
                f"{through.rps:,.0f}",
                f"{straight.rps:,.0f}",
                f"{through.rps / straight.rps:.2f}×",
                f"{through.p50_ms:.2f} / {straight.p50_ms:.2f}",
                f"{through.p50_ms - straight.p50_ms:+.2f}",
                _cell(through.cpu_ms.get("berth serve")),
                _cell(through.cpu_ms.get("replica")),
                _cell(straight.cpu_ms.get("replica")),
            ]
        )
    header = [
        "concurrency",
        "gateway req/s",
        "straight req/s",
        "ratio",
        "p50 ms gateway / straight",
        "added p50 ms",
        "CPU ms/req: berth serve",
        "replica",
        "replica (straight)",
    ]
    return [
        *out,
        "",
        "Through the gateway vs straight to the replica's own address (no token, no gateway), "
        "with the CPU time each process used per request:",
        "",
        *_table(header, rows),
    ]


def mermaid(results: list[ServerResult], concurrency: int) -> list[str]:
    shown = [r for r in results if r.key != "berth-batching" or concurrency in r.loads]
    labels = ", ".join(f'"{r.label.replace(",", "")}"' for r in shown)
    values = [r.rps(concurrency) or 0.0 for r in shown]
    top = max([*values, 1.0])
    ceiling = 10 ** len(str(int(top))) // 10
    ceiling = (int(top) // ceiling + 1) * ceiling
    return [
        "```mermaid",
        "xychart-beta",
        f'    title "req/s at concurrency {concurrency}, one row per request"',
        f"    x-axis [{labels}]",
        f'    y-axis "requests per second" 0 --> {ceiling}',
        f"    bar [{', '.join(f'{v:.0f}' for v in values)}]",
        "```",
    ]


def _file_link(path: str, doc_dir: Path | None) -> str:
    """A link relative to the page when the file lies beside it, else the path."""
    if doc_dir is not None:
        try:
            relative = Path(path).resolve().relative_to(doc_dir.resolve())
        except ValueError:
            pass
        else:
            return f"[{relative}]({relative})"
    return f"`{path}`"


def profile_lines(berth: BerthFigures, doc_dir: Path | None = None) -> list[str]:
    out: list[str] = []
    for summary in berth.profiles.values():
        out += [
            f"**{summary.label}** — {summary.samples} samples in {summary.seconds:.0f} s, GIL "
            f"held {100 * summary.busy:.0f} % of the time; speedscope file "
            f"{_file_link(summary.file, doc_dir)}",
            "",
        ]
        rows = []
        for i in range(max(len(summary.own), len(summary.inclusive))):
            own = summary.own[i] if i < len(summary.own) else None
            incl = summary.inclusive[i] if i < len(summary.inclusive) else None
            rows.append(
                [
                    f"{summary.share(own[1]):.1f}" if own else "",
                    f"`{own[0]}`" if own else "",
                    f"{summary.share(incl[1]):.1f}" if incl else "",
                    f"`{incl[0]}`" if incl else "",
                ]
            )
        header = ["own %", "on top of the stack", "incl %", "anywhere in the stack"]
        by_package = ", ".join(f"{name} {summary.share(n):.0f} %" for name, n in summary.packages)
        out += [*_table(header, rows), "", f"Own time by package: {by_package}.", ""]
    return out


def notes_lines(results: list[ServerResult]) -> list[str]:
    """What went wrong or needed force, per server (the first note is how it runs)."""
    out = []
    for r in results:
        extra = "; ".join(r.notes[1:])
        if r.status != "ok":
            out.append(
                f"- **{r.label}** — **{r.status}**: {r.reason}" + (f" ({extra})" if extra else "")
            )
        elif extra:
            out.append(f"- **{r.label}** — {extra}")
    return out or ["- None: every server answered the expected prediction and stopped on SIGTERM."]


def markdown(
    results: list[ServerResult],
    berth: BerthFigures | None,
    items: list[Ratio],
    info: dict[str, str],
    command: str,
    concurrencies: list[int],
    seconds: int,
    doc_dir: Path | None = None,
) -> str:
    lines = [
        "# Benchmarks: berth and its peers",
        "",
        "Written by `bench/peers.py`; rerun the command below to refresh every figure here.",
    ]
    if seconds < 10:
        lines += ["", f"> A short run ({seconds} s per load): figures are indicative only."]
    lines += [
        "",
        "## What is compared",
        "",
        "The same scikit-learn model — a `LogisticRegression` on iris, trained by the script and "
        "saved once as an MLflow model (cloudpickle) — served by each server below with one "
        "worker (one replica for berth and Ray Serve) and access logs off, on one machine, one "
        "after the other. Servers that do not read MLflow models load the same `model.pkl`. "
        "Every request carries one row, in the body natural to the server: `dataframe_split` "
        "with named columns for berth and MLflow; for MLServer the Open Inference Protocol (V2) "
        'with one FP64 tensor (`content_type: "np"`); `{"columns": [...], "data": [[...]]}` '
        "for BentoML, Ray Serve and bare uvicorn, whose code (the same in all three, "
        "`bench/peer_bench/apps/`) puts the columns in the order the model was fitted with and "
        "calls `predict` on a float array. Each server runs from its own venv built by uv with "
        "pinned versions (`bench/peer_bench/venvs.py`); the model's own requirements are "
        + ", ".join(f"`{r}`" for r in MODEL_STACK)
        + ".",
        "",
        *_table(
            ["server", "version", "how it runs"],
            [[r.label, r.version, "; ".join(r.notes[:1])] for r in results],
        ),
        "",
        "## Machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores; memory {info['memory']}",
        f"- {info['kernel']}, Python {info['python']}, {info['wrk']}; run {info['date']}",
        "- wrk runs on the same cores as the server it drives (2 threads from c=8), as every "
        "server's figures do here.",
        "",
        "## Command",
        "",
        "```sh",
        command,
        "```",
        "",
        "## Targets",
        "",
        *ratios_table(items),
        "",
        "## Throughput",
        "",
        *rps_table(results, concurrencies),
        "",
    ]
    for c in (8, 64):
        if c in concurrencies:
            lines += [*mermaid(results, c), ""]
    lines += [
        "## Latency and errors",
        "",
        f"wrk for {seconds} s per row after a 1 s run at the same concurrency (and a 2 s run at "
        f"c={max(concurrencies)} after start-up); errors are non-2xx answers plus socket "
        "errors (connect, read, write, timeout — wrk's timeout is 2 s) as wrk counts them; a "
        "request that timed out is not in the latency figures.",
        "",
        *loads_table(results, concurrencies),
        "",
        "## Start-up and memory",
        "",
        "Cold start: process launched → first successful predict (venvs and, for berth, the "
        "model environment already built). Idle memory: summed over the server's whole "
        "process tree (every descendant and every process left in its session) after the "
        "warm-up and 2 s idle; RSS counts pages shared between processes once per process, "
        "PSS divides them.",
        "",
        *startup_table(results),
        "",
    ]
    if berth is not None:
        base = next((r for r in results if r.key == "berth"), None)
        lines += ["## berth in detail", "", *berth_lines(berth, base), ""]
    if berth is not None and berth.profiles:
        flags = " ".join(profile.MODES[berth.profile_mode])
        method = (
            f"A separate c=8 run under `py-spy record {flags}` (100 Hz; a sample is taken only "
            "while a thread holds the GIL); the measured runs above were not profiled. The "
            "right-hand columns count a function wherever it is in the stack, leaving out "
            f"those in ≥ {profile.ROOT_SHARE:.0%} of their thread's samples (entry points, the "
            "event loop's run). Open the speedscope files at speedscope.app for the whole "
            "picture."
        )
        lines += [
            "## Where berth's time goes (py-spy, c=8)",
            "",
            method,
            "",
            *profile_lines(berth, doc_dir),
        ]
    lines += ["## Notes per server", "", *notes_lines(results), ""]
    return "\n".join(lines)


def ratio_lines(items: list[Ratio]) -> list[str]:
    out = []
    for r in items:
        target = f"  (target {r.target_shown}: {r.verdict or '—'})" if r.target else ""
        detail = f"  [{r.detail}]" if r.detail else ""
        out.append(f"{r.name}: {r.shown}{target}{detail}")
    return out
