"""The reference workload against an engine that answers in process (httpx's transport)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from berth.controller import workload
from berth.core.errors import InvalidParameter


class Engine:
    """Answers chat completions with as many tokens as asked, recording each body."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, object]] = []
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == workload.ROUTE
        body = json.loads(request.content)
        self.bodies.append(body)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": "no chat template"}})
        usage = {"prompt_tokens": 80, "completion_tokens": body["max_tokens"]}
        return httpx.Response(200, json={"usage": usage})


def run(engine: Engine, slots: int, seconds: float) -> tuple[workload.Rounds, list[int]]:
    heard: list[int] = []

    async def scenario() -> workload.Rounds:
        transport = httpx.MockTransport(engine)
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
            return await workload.measure(client, slots, seconds, lambda r: heard.append(r.rounds))

    return asyncio.run(scenario()), heard


def test_a_short_warm_up_round_then_measured_rounds_of_fixed_length_answers() -> None:
    engine = Engine()
    rounds, heard = run(engine, slots=4, seconds=0.0)
    assert (rounds.rounds, rounds.requests, rounds.prompt_tokens) == (1, 4, 80)
    assert rounds.completion_tokens == 4 * workload.MAX_TOKENS
    assert heard == [1]
    assert [b["max_tokens"] for b in engine.bodies] == [workload.WARM_UP_TOKENS] * 4 + [
        workload.MAX_TOKENS
    ] * 4
    assert all(b["ignore_eos"] is True and b["cache_prompt"] is False for b in engine.bodies)


def test_an_engine_that_refuses_the_workload_fails_the_measure_saying_so() -> None:
    with pytest.raises(InvalidParameter, match=r"refused the reference workload \(500\)"):
        run(Engine(status=500), slots=2, seconds=0.0)
