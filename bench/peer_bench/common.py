"""What every server in the comparison shares: the row sent, the bodies, the results' shapes,
and the helpers that start a server and wait for its first prediction."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .drive import Load

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROW = [5.1, 3.5, 1.4, 0.2]
EXPECTED = [0]  # setosa: what every server must answer for ROW
APPS = Path(__file__).resolve().parent / "apps"

# One row per request, in the body natural to each server.
DATAFRAME_SPLIT = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}})
COLUMNS_DATA = json.dumps({"columns": COLUMNS, "data": [ROW]})
# The Open Inference Protocol's natural form for one row of four features: one FP64 tensor.
V2_TENSOR = json.dumps(
    {
        "parameters": {"content_type": "np"},
        "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}],
    }
)


def predictions(answer: Any) -> Any:
    """The predictions in any of the servers' answers: MLflow's and the apps' ``predictions``,
    the V2 ``outputs``, or a bare list (BentoML)."""
    if isinstance(answer, dict) and "predictions" in answer:
        return answer["predictions"]
    if isinstance(answer, dict) and "outputs" in answer:
        return answer["outputs"][0]["data"]
    return answer


class StartFailed(Exception):
    """A server did not come up; the message says why (its exit code and last log lines)."""


@dataclass
class ServerResult:
    """One line of the comparison: a server, how it started, its memory, its loads."""

    key: str
    label: str
    status: str = "ok"  # ok | failed | n/a
    reason: str = ""
    version: str = ""
    cold_start_s: float | None = None
    rss_mb: float | None = None
    pss_mb: float | None = None
    processes: int | None = None
    loads: dict[int, Load] = field(default_factory=dict)
    load_errors: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def rps(self, concurrency: int) -> float | None:
        load = self.loads.get(concurrency)
        return None if load is None else load.rps

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k not in ("loads", "load_errors")}
        out["loads"] = {str(c): vars(r) for c, r in self.loads.items()}
        out["load_errors"] = {str(c): e for c, e in self.load_errors.items()}
        return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def launch(
    argv: list[str], env: Mapping[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    """Start a server in its own session (so its whole tree can be found and stopped)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            env={**os.environ, **env},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` every 50 ms; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def first_predict(
    proc: subprocess.Popen[bytes],
    url: str,
    body: str,
    log: Path,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """Wait until ``url`` answers ``body`` with a 2xx, or fail if ``proc`` exits first; returns
    the answer's JSON."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                raise StartFailed(f"exited with code {code}: {log_tail(log)}")
            try:
                answer = client.post(url, content=body, headers=sent)
                if answer.is_success:
                    return answer.json()
                last = f"HTTP {answer.status_code}: {answer.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.05)
    raise StartFailed(f"no successful predict within {timeout:.0f} s (last: {last})")


def concurrencies(text: str) -> list[int]:
    """A ``--concurrency`` flag's value: comma-separated positive integers, sorted, once each."""
    values = sorted({int(v) for v in text.split(",") if v.strip()})
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("concurrencies are positive integers, e.g. 1,4,16")
    return values


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(benchmark: Callable[[], None]) -> None:
    """``benchmark`` to its end; interrupted (its servers stop on the way out), exit 130."""
    try:
        benchmark()
    except KeyboardInterrupt:
        log("interrupted: every server started was stopped")
        sys.exit(130)
