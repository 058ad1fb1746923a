"""An open LLM's requests through a real `Gateway` in process, the engine played by
`EngineStandIn`: token timings and counts where people look (metrics, access log, inference
table), and admission against a provisioned band (queue, then 429, then the demand the
autoscaler reads)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from berth.core.dataplane import ProvisionedBand
from berth.inference import read_payloads
from tests.support.engine import ENTITY, PROMPT_TOKENS, EngineStandIn, engine_route
from tests.support.gateway import Harness

CHAT = "/serving-endpoints/chat/completions"
Answer = tuple[int, dict[str, str], bytes]


def chat(max_tokens: int, *, stream: bool = False) -> dict[str, Any]:
    return {
        "model": "llm",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": max_tokens,
        "stream": stream,
    }


def sample(harness: Harness, name: str) -> float:
    """A sample of ``ENTITY`` of endpoint ``llm`` from the rendered metrics; 0 when absent."""
    labels = f'{{endpoint="llm",served_entity="{ENTITY}"}}'
    for line in harness.rendered().splitlines():
        if line.startswith(name + labels):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def access_log(harness: Harness) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in harness.logs.rglob("access-*.log")
        for line in path.read_text().splitlines()
    ]


async def until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


def test_a_stream_is_timed_counted_and_captured_whole(tmp_path: Path) -> None:
    engine = EngineStandIn(gap_s=0.005)
    route = engine_route("llm", capture=1.0, access_log=True)
    harness = Harness(tmp_path, route, apps=[], engine=engine)

    async def go() -> Answer:
        try:
            return await harness.call(CHAT, chat(6, stream=True))
        finally:
            await harness.close()

    status, headers, payload = asyncio.run(go())
    assert status == 200 and headers["content-type"] == "text/event-stream"
    assert payload.endswith(b"data: [DONE]\n\n")
    events = [json.loads(e[6:]) for e in payload.decode().split("\n\n") if e.startswith("data: {")]
    assert [e["choices"][0]["delta"].get("content") for e in events[1:7]] == [
        f"t{i}" for i in range(6)
    ]

    assert sample(harness, "berth_llm_time_to_first_token_seconds_count") == 1
    assert sample(harness, "berth_llm_inter_token_latency_seconds_count") == 1
    rendered = harness.rendered()
    for direction, count in (("in", PROMPT_TOKENS), ("out", 6)):
        labels = f'direction="{direction}",endpoint="llm",served_entity="{ENTITY}"'
        assert f"berth_tokens_total{{{labels}}} {count}.0" in rendered
    assert sample(harness, "berth_llm_engine_slots_in_use") == 0

    [line] = access_log(harness)
    assert (line["prompt_tokens"], line["completion_tokens"]) == (PROMPT_TOKENS, 6)
    # Each event arrives in two chunks 5 ms apart: 10 ms between tokens, at least.
    assert line["itl_ms"] >= 9.0
    assert line["latency_ms"] > line["ttft_ms"] >= 9.0

    harness.capture.close()
    [row] = read_payloads(tmp_path / "inference", "llm-id")
    assert row["response"] == payload.decode(), "a stream is captured whole"
    assert (row["input_tokens"], row["output_tokens"]) == (PROMPT_TOKENS, 6)
    assert row["ttft_ms"] == pytest.approx(line["ttft_ms"], abs=0.001)
    assert row["itl_ms"] == pytest.approx(line["itl_ms"], abs=0.001)


def test_a_whole_answer_is_its_own_first_token_and_has_no_gaps(tmp_path: Path) -> None:
    harness = Harness(
        tmp_path, engine_route("llm", access_log=True), apps=[], engine=EngineStandIn()
    )

    async def go() -> Answer:
        try:
            return await harness.call(CHAT, chat(2))
        finally:
            await harness.close()

    status, _, payload = asyncio.run(go())
    assert status == 200 and json.loads(payload)["usage"]["completion_tokens"] == 2
    [line] = access_log(harness)
    assert line["itl_ms"] is None
    assert 0 < line["ttft_ms"] <= line["latency_ms"]
    assert sample(harness, "berth_llm_time_to_first_token_seconds_count") == 1
    assert sample(harness, "berth_llm_inter_token_latency_seconds_count") == 0


class HeldClock:
    """Monotonic time that stands still until `release`, then runs on from where it stood:
    what arrives while it is held arrives at one instant, however slow the machine."""

    def __init__(self) -> None:
        self._held_at: float | None = time.monotonic()
        self._offset = 0.0

    def __call__(self) -> float:
        return self._held_at if self._held_at is not None else time.monotonic() - self._offset

    def advance(self, seconds: float) -> None:
        assert self._held_at is not None
        self._held_at += seconds

    def release(self) -> None:
        assert self._held_at is not None
        self._offset = time.monotonic() - self._held_at
        self._held_at = None


def test_load_above_the_band_queues_then_is_refused_and_asks_for_replicas(
    tmp_path: Path,
) -> None:
    """A band of 10 tokens/s (a bucket of 10) and a 1.2 s queue: requests reserving 5 tokens
    (1 of prompt, 4 of max_tokens) go two at once, the next two queue (0.5 s and 1 s of
    refill before them), and the rest would wait past 1.2 s: 429 with Retry-After. The eight
    arrive at one instant of the bands' clock: a stall of the machine between two of them
    would refill the bucket and queue a fifth."""
    band = ProvisionedBand(chunk_tps=10, min_tps=10, max_tps=30)
    engine = EngineStandIn()
    engine.open.clear()
    route = engine_route("llm", band=band, slots=16)
    clock = HeldClock()
    harness = Harness(tmp_path, route, apps=[], engine=engine, band_queue_s=1.2, clock=clock)
    gateway = harness.gateway

    async def go() -> list[Answer]:
        try:
            calls = [asyncio.ensure_future(harness.call(CHAT, chat(4))) for _ in range(8)]
            await until(lambda: sum(c.done() for c in calls) == 4, "four refusals")
            clock.release()
            assert engine.running == 2
            assert gateway.engine_load("llm", ENTITY) == (2, 2), "two queued, two decoding"
            assert sample(harness, "berth_llm_queue_depth") == 2, "as the refusals saw it"
            assert sample(harness, "berth_llm_engine_slots_in_use") == 2
            load = gateway.load()[("llm", ENTITY)]
            assert load.band_queued_s == pytest.approx(1.0), "10 tokens at 10 tokens/s"
            await until(lambda: engine.running == 4, "the queue admitted as the band refills")
            engine.open.set()
            return list(await asyncio.gather(*calls))
        finally:
            await harness.close()

    answers = asyncio.run(go())
    refused = [(h, json.loads(p)) for s, h, p in answers if s == 429]
    assert sum(s == 200 for s, _, _ in answers) == 4 and len(refused) == 4
    for headers, body in refused:
        assert body["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert "provisioned throughput of 10 tokens/s" in body["message"]
        assert int(headers["retry-after"]) >= 1
    rendered = harness.rendered()
    assert f'endpoint="llm",served_entity="{ENTITY}",status="429"}} 4.0' in rendered
    load = gateway.load()[("llm", ENTITY)]
    used = 4 * (PROMPT_TOKENS + 4)
    assert load.band_queued_s == 0 and load.band_s == pytest.approx(used / 10)
    assert load.served == 4


def test_a_band_grows_with_its_routed_replicas_and_lets_the_queue_through(
    tmp_path: Path,
) -> None:
    """Requests reserve 9 tokens (1 of prompt, 8 of max_tokens): one goes, two queue. The
    first answer settles 13 tokens (5 of prompt, 8 generated), 3 more than the bucket held.
    At 10 tokens/s the queue would need 2.1 s of refill; routes with ten replicas make the
    band 100 tokens/s, and 0.5 s of the bands' clock lets both through (at the old rate it
    would not let one)."""
    band = ProvisionedBand(chunk_tps=10, min_tps=10, max_tps=100)
    addresses = [f"e{i}" for i in range(10)]
    engine = EngineStandIn(*addresses)
    clock = HeldClock()
    route = engine_route("llm", "e0", band=band)
    harness = Harness(tmp_path, route, apps=[], engine=engine, clock=clock)
    gateway = harness.gateway

    async def go() -> list[Answer]:
        try:
            calls = [asyncio.ensure_future(harness.call(CHAT, chat(8))) for _ in range(3)]
            await until(lambda: sum(c.done() for c in calls) == 1, "one answer")
            assert gateway.engine_load("llm", ENTITY)[0] == 2
            wider = engine_route("llm", *addresses, band=band)
            current = harness.bus.current
            harness.bus.publish(replace(current, version=2, endpoints={"llm": wider}))
            clock.advance(0.5)
            await until(lambda: all(c.done() for c in calls), "the queue to go through")
            return list(await asyncio.gather(*calls))
        finally:
            await harness.close()

    assert [s for s, _, _ in asyncio.run(go())] == [200, 200, 200]
