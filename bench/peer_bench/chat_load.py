"""Driving an OpenAI chat-completions address with streamed requests, for bench/llm.py.

``concurrency`` clients in one asyncio loop (aiohttp), each sending the same body again as soon
as its answer ends, until the duration is up; requests under way then are finished and
counted, and the cell's wall time runs from the first send to the last answer. Per request:
the time to the first event carrying content (TTFT), the time to the end, and the output
tokens the answer's usage reports. Events are matched by a regular expression, not parsed
(only the usage is), so the driver costs little and the same for every server.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

_CONTENT = re.compile(rb'"content":\s*"[^"]')
"""An event whose delta carries text (not the role-only first event, not an empty string)."""
_USAGE = re.compile(rb'"usage":\s*\{')
RETRIES = 2
OVERHEAD_HEADER = "x-berth-overhead-ms"
"""berth's gateway time before it opened the stream to the replica (auth, routing, admission)."""


@dataclass
class Cell:
    """One fixed-duration run at one concurrency (or several, pooled)."""

    concurrency: int
    wall_s: float
    requests: int
    tokens: int
    ttft_ms: list[float]
    latency_ms: list[float]
    errors: int = 0
    short: int = 0
    """Answers whose usage did not report the asked ``max_tokens`` (or reported none)."""
    error_samples: list[str] = field(default_factory=list)
    cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU milliseconds per request, by process, filled in by the caller."""
    retries: int = 0
    """Requests sent again because the server closed their connection before answering."""
    overhead_ms: list[float] = field(default_factory=list)
    """berth's ``x-berth-overhead-ms`` of each answer (none from other servers)."""
    others_cores: float = float("nan")
    """Cores the machine's other processes used meanwhile, filled in by the caller."""

    @property
    def tok_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    def ttft(self, q: float) -> float:
        return _quantile(self.ttft_ms, q)

    def latency(self, q: float) -> float:
        return _quantile(self.latency_ms, q)

    def overhead(self, q: float) -> float:
        return _quantile(self.overhead_ms, q)


def pooled(cells: list[Cell]) -> Cell:
    """Runs at one concurrency taken together: their requests, tokens and wall times added,
    their samples merged."""
    if len(cells) == 1:
        return cells[0]
    requests = sum(c.requests for c in cells)
    wall = sum(c.wall_s for c in cells)
    parts = {part for c in cells for part in c.cpu_ms}
    return Cell(
        cells[0].concurrency,
        wall,
        requests,
        sum(c.tokens for c in cells),
        sorted(v for c in cells for v in c.ttft_ms),
        sorted(v for c in cells for v in c.latency_ms),
        sum(c.errors for c in cells),
        sum(c.short for c in cells),
        [s for c in cells for s in c.error_samples][:3],
        {
            part: sum(c.cpu_ms.get(part, 0.0) * c.requests for c in cells) / max(requests, 1)
            for part in parts
        },
        sum(c.retries for c in cells),
        sorted(v for c in cells for v in c.overhead_ms),
        sum(c.others_cores * c.wall_s for c in cells) / wall if wall else float("nan"),
    )


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    if q == 0.5:
        return statistics.median(values)
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


class _Failed(Exception):
    pass


async def _one(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str]
) -> tuple[float, float, int | None, int, float | None]:
    """(TTFT ms, latency ms, completion tokens, retries, the answer's ``x-berth-overhead-ms``)
    of one streamed request.

    A connection the server closed before answering (a keep-alive one it dropped; llama.cpp's
    server does, after a stream) is tried again, at most ``RETRIES`` times, as the OpenAI SDK
    does. The times count from the try that was answered, so a server is not charged for
    them."""
    for retries in range(RETRIES + 1):
        sent = time.perf_counter()
        try:
            answer = await session.post(url, data=body, headers=headers)
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
            if retries == RETRIES:
                raise
            continue
        break
    first: float | None = None
    tokens: int | None = None
    async with answer:
        if answer.status != 200:
            raise _Failed(f"HTTP {answer.status}: {(await answer.text())[:200]}")
        async for line in answer.content:
            if not line.startswith(b"data:"):
                continue
            if first is None and _CONTENT.search(line):
                first = time.perf_counter()
            elif _USAGE.search(line):
                usage: Any = json.loads(line[5:]).get("usage")
                if isinstance(usage, dict):
                    tokens = usage.get("completion_tokens")
    ended = time.perf_counter()
    if first is None:
        raise _Failed("the stream carried no content")
    overhead = answer.headers.get(OVERHEAD_HEADER)
    return (
        (first - sent) * 1000,
        (ended - sent) * 1000,
        tokens,
        retries,
        float(overhead) if overhead else None,
    )


async def _drive(
    url: str, body: bytes, headers: Mapping[str, str], concurrency: int, seconds: float, want: int
) -> Cell:
    ttfts: list[float] = []
    overheads: list[float] = []
    latencies: list[float] = []
    counted = {"tokens": 0, "errors": 0, "short": 0, "retries": 0}
    samples: list[str] = []
    sent_headers = {"Content-Type": "application/json", **headers}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        deadline = started + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                try:
                    ttft, latency, tokens, retries, overhead = await _one(
                        session, url, body, sent_headers
                    )
                except (TimeoutError, _Failed, aiohttp.ClientError) as exc:
                    counted["errors"] += 1
                    if len(samples) < 3:
                        samples.append(f"{type(exc).__name__}: {exc}"[:300])
                    await asyncio.sleep(0.05)  # a refusing server is not spun on
                    continue
                ttfts.append(ttft)
                latencies.append(latency)
                counted["tokens"] += tokens or 0
                counted["retries"] += retries
                if overhead is not None:
                    overheads.append(overhead)
                if tokens != want:
                    counted["short"] += 1

        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ttfts.sort()
    latencies.sort()
    return Cell(
        concurrency,
        wall,
        len(ttfts),
        counted["tokens"],
        ttfts,
        latencies,
        counted["errors"],
        counted["short"],
        samples,
        retries=counted["retries"],
        overhead_ms=sorted(overheads),
    )


def drive(
    url: str,
    body: dict[str, Any],
    concurrency: int,
    seconds: float,
    headers: Mapping[str, str] | None = None,
) -> Cell:
    """Streamed ``body`` to ``url`` from ``concurrency`` clients for ``seconds``."""
    payload = json.dumps(body).encode()
    want = int(body["max_tokens"])
    return asyncio.run(_drive(url, payload, headers or {}, concurrency, seconds, want))
