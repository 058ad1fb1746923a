"""The gateway's request path end to end, in process: a real `Gateway` in front of real
`ReplicaApp` objects (the replica runtime), joined by `InProcessReplicas` instead of sockets."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import ALICE, BOB, Harness, route


def run(harness: Harness, *calls: tuple[Any, ...]) -> list[tuple[int, dict[str, str], bytes]]:
    async def go() -> list[tuple[int, dict[str, str], bytes]]:
        try:
            return [await harness.call(*call) for call in calls]
        finally:
            await harness.close()

    return asyncio.run(go())


INVOKE = "/serving-endpoints/ep/invocations"


def test_a_query_is_answered_by_a_replica_and_recorded(tmp_path: Path) -> None:
    policy = {"capture": 1.0, "access_log": True, "track_usage": True}
    harness = Harness(tmp_path, route("ep", "a", **policy), apps=["a"])
    [(status, headers, payload)] = run(harness, (INVOKE, {"inputs": [1, 2]}))
    assert status == 200, payload
    assert json.loads(payload) == {"predictions": [2, 4]}
    assert headers["served-model-name"] == "one"
    request_id = headers["x-request-id"]
    assert float(headers["x-berth-overhead-ms"]) >= 0
    rendered = harness.rendered()
    assert 'berth_requests_total{endpoint="ep",served_entity="one",status="200"} 1.0' in rendered
    for stage in ("auth", "rate_limit", "queue_wait", "upstream"):
        assert f'stage="{stage}"' in rendered
    logged = [
        json.loads(line)
        for path in harness.logs.rglob("access-*.log")
        for line in path.read_text().splitlines()
    ]
    assert [(e["request_id"], e["status"], e["principal"]) for e in logged] == [
        (request_id, 200, "alice")
    ]
    harness.capture.close()
    assert harness.capture.counts()["ep"].rows_written == 1
    [usage] = harness.gateway.recorder.usage.drain().items()
    assert usage[0].principal == "alice" and usage[1].requests == 1


@pytest.mark.parametrize(
    ("token", "path", "method", "status", "says"),
    [
        (None, INVOKE, "POST", 401, "Missing credentials"),
        ("bth_nobody", INVOKE, "POST", 401, "Invalid access token"),
        (BOB, INVOKE, "POST", 403, "does not have CAN_QUERY"),
        (ALICE, "/serving-endpoints/nope/invocations", "POST", 404, "does not exist"),
        (ALICE, INVOKE, "GET", 400, "Use POST"),
    ],
)
def test_refusals_are_databricks_errors(
    tmp_path: Path, token: str | None, path: str, method: str, status: int, says: str
) -> None:
    harness = Harness(tmp_path, apps=["a"])

    async def go() -> tuple[int, dict[str, str], bytes]:
        try:
            return await harness.call(path, {"inputs": [1]}, token=token, method=method)
        finally:
            await harness.close()

    got, headers, payload = asyncio.run(go())
    assert got == status
    answer = json.loads(payload)
    assert says in answer["message"] and answer["error_code"]
    assert headers["x-request-id"]


def test_a_body_over_the_limit_is_refused(tmp_path: Path) -> None:
    harness = Harness(tmp_path, apps=["a"])
    [(status, _, payload)] = run(harness, (INVOKE, {"inputs": [1] * 1000}))
    assert status == 400 and "1024 byte limit" in json.loads(payload)["message"]


def test_a_replica_that_answers_nothing_is_retried_on_another(tmp_path: Path) -> None:
    harness = Harness(tmp_path, route("ep", "dead", "b"), apps=["b"])
    calls = harness.transport.calls

    async def go() -> list[int]:
        """Queries until the balancer (two random choices) has tried the dead replica once,
        then four more: each is answered, and the dead one is never tried again."""
        try:
            statuses = []
            while "dead" not in calls and len(statuses) < 64:
                statuses.append((await harness.call(INVOKE, {"inputs": [1]}))[0])
            for i in range(4):
                statuses.append((await harness.call(INVOKE, {"inputs": [i]}))[0])
            return statuses
        finally:
            await harness.close()

    statuses = asyncio.run(go())
    assert statuses == [200] * len(statuses)
    assert calls.count("dead") == 1  # marked down after its one refusal


def test_with_every_replica_gone_the_answer_is_a_503(tmp_path: Path) -> None:
    harness = Harness(tmp_path, route("ep", "x", "y", "z"), apps=[])
    [(status, _, payload)] = run(harness, (INVOKE, {"inputs": [1]}))
    assert status == 503 and "refused the connection" in json.loads(payload)["message"]
    assert sorted(harness.transport.calls) == ["x", "y", "z"]


def test_an_openai_chat_on_a_replica_counts_tokens(tmp_path: Path) -> None:
    harness = Harness(tmp_path, route("ep", "a", track_usage=True), apps=["a"])
    chat = {"model": "ep", "messages": [{"role": "user", "content": "hello"}]}
    [(status, _, payload)] = run(harness, ("/serving-endpoints/chat/completions", chat))
    assert status == 200 and json.loads(payload)["usage"]["completion_tokens"] == 1
    rendered = harness.rendered()
    assert 'berth_tokens_total{direction="in",endpoint="ep",served_entity="one"} 3.0' in rendered
    [usage] = harness.gateway.recorder.usage.drain().values()
    assert (usage.input_tokens, usage.output_tokens) == (3, 1)


def test_a_stream_is_relayed_event_by_event(tmp_path: Path) -> None:
    harness = Harness(tmp_path, route("ep", "a", track_usage=True), apps=["a"])
    chat = {"messages": [{"role": "user", "content": "hello"}], "stream": True}
    [(status, headers, payload)] = run(harness, (INVOKE, chat))
    assert status == 200 and headers["content-type"] == "text/event-stream"
    events = [line for line in payload.decode().split("\n\n") if line]
    assert events[-1] == "data: [DONE]" and len(events) == 4
    [usage] = harness.gateway.recorder.usage.drain().values()
    assert (usage.input_tokens, usage.output_tokens) == (3, 2)


def test_the_rate_limit_refuses_the_call_past_it_with_quota_headers(tmp_path: Path) -> None:
    limits = ({"key": "user", "calls": 1, "renewal_period": "minute"},)
    harness = Harness(tmp_path, route("ep", "a", rate_limits=limits), apps=["a"])
    (first, granted, _), (second, refused, payload) = run(
        harness, (INVOKE, {"inputs": [1]}), (INVOKE, {"inputs": [2]})
    )
    assert first == 200 and granted["x-ratelimit-remaining-requests"] == "0"
    assert second == 429 and int(refused["retry-after"]) > 0
    assert json.loads(payload)["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_the_models_list_shows_what_the_caller_may_query(tmp_path: Path) -> None:
    harness = Harness(tmp_path, route("ep", "a"), route("other", "a"), apps=["a"])
    [(status, _, payload)] = run(harness, ("/serving-endpoints/models", b""))
    assert status == 200
    assert [m["id"] for m in json.loads(payload)["data"]] == ["ep", "other"]


def test_input_guardrails_mask_the_body_the_replica_sees(tmp_path: Path) -> None:
    guard = {"input": {"pii": {"behavior": "BLOCK"}}}
    harness = Harness(tmp_path, route("ep", "a", guardrails=guard), apps=["a"])
    chat = {"messages": [{"role": "user", "content": "mail me at someone@example.com"}]}
    [(status, _, payload)] = run(harness, (INVOKE, chat))
    assert status == 400 and "PII" in json.loads(payload)["message"]
