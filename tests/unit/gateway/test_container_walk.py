"""A custom container's requests through a real `Gateway` in process, its server played by
`ServerStandIn`: a container that declares an LLM task answers the OpenAI routes as an
engine does (usage counted, errors in the Databricks shape); raw invoke reaches any path of a
server that allows it, and no other."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.core.dataplane import (
    ContainerRoute,
    EndpointRoute,
    EntityRoute,
    ReplicaProtocol,
    ReplicaRoute,
    RoutePolicy,
)
from berth.gateway.upstream import Headers, UpstreamResponse
from berth.inference import read_payloads
from tests.support.gateway import Harness

USAGE = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
Answer = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    content_type: str
    body: bytes

    async def read(self) -> bytes:
        return self.body

    async def chunks(self) -> AsyncIterator[bytes]:
        for line in self.body.splitlines(keepends=True):
            yield line


class ServerStandIn:
    """A container's server: an OpenAI chat answer (or its events) with ``USAGE`` on
    ``/v1/chat/completions``, an OpenAI error past 100 ``max_tokens``, and on any other
    path what it was asked, as plain text."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, bytes]] = []

    async def post(
        self, address: str, path: str, body: bytes, headers: Headers, timeout_s: float
    ) -> UpstreamResponse:
        raise AssertionError("a container's answers are read as streams")

    @contextlib.asynccontextmanager
    async def stream(
        self,
        address: str,
        path: str,
        body: bytes,
        headers: Headers,
        timeout_s: float,
        *,
        method: str = "POST",
    ) -> AsyncIterator[_Answer]:
        self.asked.append((method, path, body))
        if path != "/v1/chat/completions":
            yield _Answer(200, "text/plain", f"{method} {path}".encode())
            return
        request = json.loads(body)
        if request.get("max_tokens", 0) > 100:
            error = {"error": {"message": "max_tokens is past the context", "type": "invalid"}}
            yield _Answer(400, "application/json", json.dumps(error).encode())
        elif request.get("stream"):
            events = [
                {"choices": [{"delta": {"content": "h"}}]},
                {"choices": [{"delta": {"content": "i"}}]},
                {"choices": [], "usage": USAGE},
            ]
            lines = [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]
            yield _Answer(200, "text/event-stream", "".join(lines).encode())
        else:
            message = {"role": "assistant", "content": "hi"}
            answer = {"object": "chat.completion", "choices": [{"message": message}]}
            yield _Answer(200, "application/json", json.dumps({**answer, "usage": USAGE}).encode())

    def forget(self, addresses: set[str]) -> None:
        """No connection is held."""

    async def close(self) -> None:
        """Nothing to close."""


def container_route(*, task: bool, raw_invoke: bool = False, **policy: Any) -> EndpointRoute:
    protocol = ReplicaProtocol.OPENAI if task else ReplicaProtocol.CONTAINER
    entity = EntityRoute(
        "own-1",
        100,
        (ReplicaRoute("ep.own-1.0", "c0", 4),),
        protocol=protocol,
        container=ContainerRoute("/predict", raw_invoke),
    )
    rules = RoutePolicy(queriers=frozenset({"u:alice"}), capture=1.0, **policy)
    return EndpointRoute("ep", "ep-id", 1, (entity,), rules)


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "ep", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_an_llm_container_answers_the_openai_routes_and_its_predict_route(
    tmp_path: Path,
) -> None:
    server = ServerStandIn()
    harness = Harness(tmp_path, container_route(task=True), apps=[], engine=server)

    async def go() -> list[Answer]:
        try:
            return [
                await harness.call("/serving-endpoints/chat/completions", chat()),
                await harness.call("/serving-endpoints/chat/completions", chat(stream=True)),
                await harness.call(
                    "/serving-endpoints/ep/invocations", {"messages": chat()["messages"]}
                ),
                await harness.call("/serving-endpoints/ep/invocations", {"instances": [{}]}),
            ]
        finally:
            await harness.close()

    whole, streamed, invoked, vertex = asyncio.run(go())
    assert whole[0] == 200 and json.loads(whole[2])["usage"] == USAGE
    assert streamed[0] == 200 and streamed[1]["content-type"] == "text/event-stream"
    assert streamed[2].endswith(b"data: [DONE]\n\n")
    assert invoked[0] == 200 and json.loads(invoked[2])["choices"][0]["message"]["content"] == "hi"
    assert vertex[0] == 200 and vertex[2] == b"POST /predict"  # any other body: as it came
    sent = [(method, path, json.loads(body)) for method, path, body in server.asked]
    assert [(m, p) for m, p, _ in sent[:3]] == [("POST", "/v1/chat/completions")] * 3
    assert "model" not in sent[0][2]
    assert sent[1][2]["stream_options"] == {"include_usage": True}
    metrics = harness.rendered()
    assert 'berth_tokens_total{direction="in",endpoint="ep",served_entity="own-1"} 12.0' in metrics
    assert 'berth_tokens_total{direction="out",endpoint="ep",served_entity="own-1"} 6.0' in metrics
    harness.capture.close()
    rows = read_payloads(tmp_path / "inference", "ep-id")
    llm = [r for r in rows if "messages" in r["request"]]
    assert [(r["input_tokens"], r["output_tokens"]) for r in llm] == [(4, 2)] * 3
    assert streamed[2].decode() in [r["response"] for r in llm], "a stream is captured whole"


def test_an_llm_containers_error_comes_back_in_the_databricks_shape(tmp_path: Path) -> None:
    harness = Harness(tmp_path, container_route(task=True), apps=[], engine=ServerStandIn())

    async def go() -> Answer:
        try:
            return await harness.call("/serving-endpoints/chat/completions", chat(max_tokens=9999))
        finally:
            await harness.close()

    status, _, payload = asyncio.run(go())
    assert status == 400
    assert json.loads(payload) == {
        "error_code": "BAD_REQUEST",
        "message": "The model engine refused: max_tokens is past the context",
    }


def test_a_container_without_a_task_refuses_the_openai_routes_saying_how_to_declare_one(
    tmp_path: Path,
) -> None:
    harness = Harness(tmp_path, container_route(task=False), apps=[], engine=ServerStandIn())

    async def go() -> Answer:
        try:
            return await harness.call("/serving-endpoints/chat/completions", chat())
        finally:
            await harness.close()

    status, _, payload = asyncio.run(go())
    assert status == 400
    assert "register its version with task llm/v1/chat" in json.loads(payload)["message"]


def test_raw_invoke_reaches_the_path_named_with_its_method_and_query(tmp_path: Path) -> None:
    server = ServerStandIn()
    route = container_route(task=False, raw_invoke=True)
    harness = Harness(tmp_path, route, apps=[], engine=server)

    async def go() -> list[Answer]:
        try:
            invoke = "/serving-endpoints/ep/invoke/v2/models/m"
            return [
                await harness.call(invoke, b"", method="GET", query=b"verbose=1&x=%20"),
                await harness.call(invoke + "/infer", {"inputs": []}),
            ]
        finally:
            await harness.close()

    got, posted = asyncio.run(go())
    assert got[0] == 200 and got[1]["content-type"] == "text/plain"
    assert got[2] == b"GET /v2/models/m?verbose=1&x=%20"
    assert posted[2] == b"POST /v2/models/m/infer"
    assert server.asked[1][2] == b'{"inputs": []}'
    harness.capture.close()
    captured = read_payloads(tmp_path / "inference", "ep-id")
    assert sorted(r["response"] for r in captured) == [got[2].decode(), posted[2].decode()]


def test_raw_invoke_counts_against_the_endpoints_rate_limits(tmp_path: Path) -> None:
    limit = {"calls": 1, "key": "endpoint", "renewal_period": "minute"}
    route = container_route(task=False, raw_invoke=True, rate_limits=(limit,))
    harness = Harness(tmp_path, route, apps=[], engine=ServerStandIn())

    async def go() -> list[Answer]:
        try:
            return [
                await harness.call("/serving-endpoints/ep/invoke/a", b"", method="GET"),
                await harness.call("/serving-endpoints/ep/invocations", {"instances": []}),
            ]
        finally:
            await harness.close()

    invoked, refused = asyncio.run(go())
    assert (invoked[0], refused[0]) == (200, 429)


def test_raw_invoke_of_a_server_that_does_not_allow_it_is_a_404_saying_why(
    tmp_path: Path,
) -> None:
    server = ServerStandIn()
    harness = Harness(tmp_path, container_route(task=False), apps=[], engine=server)

    async def go() -> Answer:
        try:
            return await harness.call("/serving-endpoints/ep/invoke/health", b"", method="GET")
        finally:
            await harness.close()

    status, _, payload = asyncio.run(go())
    assert status == 404 and not server.asked
    error = json.loads(payload)
    assert error["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert 'invoke_route_prefix "/*"' in error["message"]
    assert "/serving-endpoints/ep/invocations" in error["message"]
