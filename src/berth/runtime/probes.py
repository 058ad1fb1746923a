"""A custom container's probes, as Vertex (and Kubernetes) define them: one check (``http_get``,
``tcp_socket`` or ``exec``) bounded by ``timeout_seconds``, and `Verdict`, which turns answers
in a row into passing or failing by ``success_threshold`` and ``failure_threshold``.

They run inside the replica, beside the server: its port is reachable from nowhere else (a
network-confined sandbox has a loopback of its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, NamedTuple

ANSWER_BYTES = 300
"""How much of a failing answer's body (or an exec's output) is kept to say why."""
PROBE_DEFAULTS = {
    "period_seconds": 10,
    "timeout_seconds": 1,
    "failure_threshold": 3,
    "success_threshold": 1,
    "initial_delay_seconds": 0,
}
"""Kubernetes' and Vertex's, as the spec's own probes have them filled in."""
STARTUP_PERIOD_S = 1
"""The period of the startup probe berth makes when the spec has none: a server that binds in
half a second is routed a second later, not ten."""

Probe = Mapping[str, Any]


class Answer(NamedTuple):
    passed: bool
    text: str
    """What came back (``HTTP 500: <body>``, an error), for logs and failure messages."""


def health_check(path: str, period_s: int = PROBE_DEFAULTS["period_seconds"]) -> dict[str, Any]:
    """An ``http_get`` on ``path`` with the default settings: what a spec without its own
    startup or health probe gets, on its health route, as Vertex does."""
    return {**PROBE_DEFAULTS, "period_seconds": period_s, "http_get": {"path": path}}


class Verdict:
    """Passing or failing, from probe answers in a row: ``failure_threshold`` failures turn a
    passing verdict failing, ``success_threshold`` successes turn a failing one passing."""

    def __init__(self, probe: Probe, passing: bool) -> None:
        self.passing = passing
        self._failures_needed = int(probe["failure_threshold"])
        self._successes_needed = int(probe["success_threshold"])
        self._run = 0
        """Successes (above 0) or failures (below 0) in a row."""

    def record(self, passed: bool) -> bool:
        """Count one answer; whether the verdict changed."""
        self._run = max(self._run, 0) + 1 if passed else min(self._run, 0) - 1
        before = self.passing
        if self._run >= self._successes_needed:
            self.passing = True
        elif -self._run >= self._failures_needed:
            self.passing = False
        return self.passing != before


async def check(probe: Probe, port: int, env: Mapping[str, str]) -> Answer:
    """Run ``probe`` once against the server on ``port`` (an ``exec`` with ``env``)."""
    timeout = float(probe["timeout_seconds"])
    try:
        return await asyncio.wait_for(_act(probe, port, env), timeout)
    except asyncio.TimeoutError:  # noqa: UP041 (not TimeoutError's alias before Python 3.11)
        return Answer(False, f"no answer within {timeout:g}s")
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        return Answer(False, f"{type(exc).__name__}: {exc}")


async def _act(probe: Probe, port: int, env: Mapping[str, str]) -> Answer:
    if "http_get" in probe:
        action = probe["http_get"]
        return await _http_get(action.get("path", "/"), action.get("port") or port)
    if "tcp_socket" in probe:
        target = probe["tcp_socket"].get("port") or port
        _, writer = await asyncio.open_connection("127.0.0.1", target)
        writer.close()
        return Answer(True, f"port {target} accepts connections")
    return await _exec(probe["exec"]["command"], env)


async def _http_get(path: str, port: int) -> Answer:
    """Vertex's and Kubernetes' rule: a status from 200 to 399 passes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nuser-agent: berth-probe\r\n"
            "connection: close\r\n\r\n".encode("latin-1")
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        body = await _read_some(reader)
    finally:
        writer.close()
    text = f"HTTP {status}" + (f": {body.decode(errors='replace')}" if body else "")
    return Answer(200 <= status < 400, text)


async def _exec(command: list[str], env: Mapping[str, str]) -> Answer:
    """Passes when the command exits 0; a command still running at the timeout is killed."""
    proc = await asyncio.create_subprocess_exec(
        *command,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    said = output[-ANSWER_BYTES:].decode(errors="replace").strip()
    return Answer(proc.returncode == 0, f"exit {proc.returncode}" + (f": {said}" if said else ""))


async def _read_some(reader: asyncio.StreamReader) -> bytes:
    """Up to ``ANSWER_BYTES`` of what follows, until the other side closes."""
    kept = b""
    while len(kept) < ANSWER_BYTES:
        chunk = await reader.read(ANSWER_BYTES - len(kept))
        if not chunk:
            break
        kept += chunk
    return kept
