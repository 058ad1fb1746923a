"""The gateway's outer guard: whatever goes wrong answering a query is a 500 in the Databricks
shape with the request id, logged with its traceback and counted, never a bare crash."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from berth.core.dataplane import EndpointRoute, EntityRoute, ReplicaRoute, Snapshot, SnapshotBus
from berth.core.ids import hash_token
from berth.core.principal import ADMINS_GROUP, Principal
from berth.gateway.app import Gateway
from berth.gateway.recording import Recorder
from berth.gateway.upstream import Upstream
from berth.metrics import Metrics

TOKEN = "bth_guard-test"
HI = b'{"model": "ep", "messages": [{"role": "user", "content": "hi"}], '
"""A well-formed chat body, left open for one more field."""


def _gateway() -> tuple[Gateway, Metrics]:
    """A route whose one replica has an address no client can parse: a broken snapshot."""
    broken = ReplicaRoute("ep.one.0", "no-port-here", 4)
    route = EndpointRoute("ep", "ep-id", 1, (EntityRoute("one", 100, (broken,)),))
    bus = SnapshotBus()
    admin = Principal("admin", groups=frozenset({ADMINS_GROUP}))
    bus.publish(Snapshot(1, {"ep": route}, {hash_token(TOKEN): admin}))
    metrics = Metrics()
    return Gateway(bus, Upstream(), recorder=Recorder(metrics)), metrics


async def _call(gateway: Gateway, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [
            (b"authorization", f"Bearer {TOKEN}".encode()),
            (b"x-request-id", b"req-guard-1"),
        ],
    }
    await gateway(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, payload


def test_an_unexpected_error_is_a_databricks_500_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway, metrics = _gateway()
    status, headers, payload = asyncio.run(
        _call(gateway, "/serving-endpoints/ep/invocations", b'{"inputs": [1]}')
    )
    assert status == 500
    answer = json.loads(payload)
    assert answer["error_code"] == "INTERNAL_ERROR"
    assert "req-guard-1" in answer["message"]
    assert headers["x-request-id"] == "req-guard-1"
    assert "unexpected error" in caplog.text and "Traceback" in caplog.text
    rendered = metrics.render().decode()
    assert 'status="500"' in rendered


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"model": "ep", "messages": [], "n": 1' + b"0" * 5000 + b"}", "Malformed JSON"),
        (b'{"model": ["ep"], "messages": []}', "'model' must be"),
        (b'{"messages": []}', "'model' must be"),
        (b"[1, 2]", "JSON object"),
        (b'{"model": "ep", "messages": "hi"}', "messages must be"),
        (b'{"model": "ep", "messages": [1]}', "messages[0] must be"),
        (
            HI + b'"max_tokens": "many"}',
            "max_tokens must be",
        ),
        (
            HI + b'"temperature": [1]}',
            "temperature must be",
        ),
        (
            HI + b'"stream": "yes"}',
            "stream must be",
        ),
        (
            HI + b'"stop": {"a": 1}}',
            "stop must be",
        ),
    ],
)
def test_bad_openai_bodies_are_400(body: bytes, says: str) -> None:
    gateway, _ = _gateway()
    status, _, payload = asyncio.run(_call(gateway, "/serving-endpoints/chat/completions", body))
    assert status == 400, payload
    assert says in json.loads(payload)["message"]
