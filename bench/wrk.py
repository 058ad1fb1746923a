"""Driving a server with wrk (Debian's package) and reading its figures back."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LUA = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
{auth}
done = function(summary, latency, requests)
  io.write(string.format("BENCH p50=%f p99=%f\\n", latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Result:
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    non_2xx: int = 0
    socket_errors: tuple[int, int, int, int] = (0, 0, 0, 0)
    """connect, read, write, timeout"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        found = shutil.which("wrk")
    assert found is not None
    return found


def run(url: str, body: str, concurrency: int, seconds: float, token: str | None = None) -> Result:
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA.format(body=body, auth=auth))
        threads = 1 if concurrency < 2 else 2
        out = subprocess.run(
            [
                ensure_wrk(),
                f"-t{threads}",
                f"-c{concurrency}",
                f"-d{int(seconds)}s",
                "-s",
                str(script),
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    non_2xx = int(bad.group(1)) if bad else 0
    connect, read, write, timeout = (
        (int(g) for g in socket_errors.groups()) if socket_errors else (0, 0, 0, 0)
    )
    errors = non_2xx + connect + read + write + timeout
    p = re.search(r"BENCH p50=([\d.]+) p99=([\d.]+)", out)
    assert p is not None, out
    return Result(
        concurrency,
        rps,
        float(p.group(1)) / 1000,
        float(p.group(2)) / 1000,
        requests,
        errors,
        non_2xx,
        (connect, read, write, timeout),
    )
