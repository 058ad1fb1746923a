"""An open LLM's requests through a real `Gateway` in process, the engine played by
`EngineStandIn`: token timings and counts where people look (metrics, access log, inference
table)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

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
        for path in harness.logs.rglob("access.log")
        for line in path.read_text().splitlines()
    ]


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
