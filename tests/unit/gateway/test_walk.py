"""The gateway's request path end to end, in process: a real `Gateway` in front of real
`ReplicaApp` objects (the replica runtime), joined by `InProcessReplicas` instead of sockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from berth.core.access_log import AccessLog
from berth.core.dataplane import (
    EndpointRoute,
    EntityRoute,
    ReplicaRoute,
    RoutePolicy,
    Snapshot,
    SnapshotBus,
)
from berth.core.ids import hash_token
from berth.core.principal import ADMINS_GROUP, Principal
from berth.gateway.app import Gateway
from berth.gateway.recording import Recorder
from berth.inference import CaptureWriter
from berth.metrics import Metrics
from berth.runtime.app import Phase, ReplicaApp
from tests.support.inprocess import InProcessReplicas

ADMIN, ALICE, BOB = "bth_admin", "bth_alice", "bth_bob"
PRINCIPALS = {
    ADMIN: Principal("admin", groups=frozenset({ADMINS_GROUP})),
    ALICE: Principal("alice"),
    BOB: Principal("bob"),
}


class Doubler:
    """A model: doubles ``inputs``; a chat body gets a one-word answer and its usage; a
    streamed chat, that word letter by letter with the usage last."""

    def predict(self, body: Any) -> Any:
        if isinstance(body, dict) and "messages" in body:
            return {
                "choices": [{"message": {"role": "assistant", "content": "hi"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            }
        return {"predictions": [2 * x for x in body["inputs"]]}

    def predict_stream(self, body: Any) -> Iterator[Any]:
        for letter in "hi":
            yield {"choices": [{"delta": {"content": letter}}]}
        yield {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}

    def batchable(self) -> None:
        return None


def replica() -> ReplicaApp:
    app = ReplicaApp(Doubler, max_concurrency=2)
    app.start_loading()
    deadline = time.monotonic() + 10
    while app.phase is Phase.LOADING and time.monotonic() < deadline:
        time.sleep(0.001)  # the load thread sets the phase
    assert app.phase is Phase.READY, app.failure
    return app


def route(name: str = "ep", *addresses: str, **policy: Any) -> EndpointRoute:
    replicas = tuple(
        ReplicaRoute(f"{name}.one.{i}", address, 2) for i, address in enumerate(addresses or ("a",))
    )
    rules = RoutePolicy(queriers=frozenset({"u:alice"}), **policy)
    return EndpointRoute(name, f"{name}-id", 1, (EntityRoute("one", 100, replicas),), rules)


class Harness:
    def __init__(self, tmp_path: Path, *routes: EndpointRoute, apps: list[str]) -> None:
        self.bus = SnapshotBus()
        tokens = {hash_token(token): who for token, who in PRINCIPALS.items()}
        self.bus.publish(Snapshot(1, {r.name: r for r in routes or (route(),)}, tokens))
        self.transport = InProcessReplicas({address: replica() for address in apps})
        self.metrics = Metrics()
        self.capture = CaptureWriter(tmp_path / "inference")
        self.access_log = AccessLog(tmp_path / "logs")
        recorder = Recorder(self.metrics, capture=self.capture, access_log=self.access_log)
        self.gateway = Gateway(self.bus, self.transport, recorder=recorder, max_body_bytes=1024)
        self.logs = tmp_path / "logs"

    async def call(
        self, path: str, body: Any = None, *, token: str | None = ALICE, method: str = "POST"
    ) -> tuple[int, dict[str, str], bytes]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent: list[dict[str, Any]] = []
        parts = [raw[:5], raw[5:]]

        async def receive() -> dict[str, Any]:
            if parts:
                chunk = parts.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(parts)}
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        headers = [(b"content-type", b"application/json")]
        if token is not None:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        scope = {"type": "http", "method": method, "path": path, "headers": headers}
        await self.gateway(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        answer_headers = {k.decode(): v.decode() for k, v in start["headers"]}
        payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], answer_headers, payload

    async def close(self) -> None:
        await self.gateway.close()

    def rendered(self) -> str:
        return self.metrics.render().decode()


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
        for path in harness.logs.rglob("access.log")
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
    answers = run(harness, *[(INVOKE, {"inputs": [i]}) for i in range(4)])
    assert [status for status, _, _ in answers] == [200] * 4
    assert harness.transport.calls.count("dead") == 1  # marked down after its one refusal


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
    assert 'berth_tokens_total{direction="in",endpoint="ep"} 3.0' in rendered
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
