"""The gateway's external-model path in process: a real `Gateway` and `Llm`, with the provider
(an outside service, unreachable from unit tests) played by `ScriptedProvider`, which answers
in the shapes berth's providers return."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any

from berth.core.dataplane import EndpointRoute, EntityRoute, RoutePolicy
from berth.core.errors import BerthError, RateLimited
from berth.gateway.app import Gateway
from berth.gateway.llm import Llm
from berth.providers import Provider
from tests.support.gateway import Harness
from tests.support.inprocess import InProcessReplicas

USAGE = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}


class ScriptedProvider:
    """Answers every call from ``model``; the first ``failures`` calls raise ``RateLimited``,
    and a stream raises ``mid_stream`` after its first chunk when given."""

    def __init__(self, model: str, failures: int = 0, mid_stream: BerthError | None = None):
        self.name = model
        self.failures = failures
        self.mid_stream = mid_stream
        self.requests: list[dict[str, Any]] = []
        self.closed = False

    def _called(self, request: dict[str, Any]) -> None:
        self.requests.append(request)
        if self.failures:
            self.failures -= 1
            raise RateLimited(f"{self.name} is busy")

    async def chat(self, request: dict[str, Any]) -> dict[str, Any]:
        self._called(request)
        message = {"role": "assistant", "content": f"from {self.name}"}
        return {"object": "chat.completion", "choices": [{"message": message}], "usage": USAGE}

    async def completions(self, request: dict[str, Any]) -> dict[str, Any]:
        self._called(request)
        return {"object": "text_completion", "choices": [{"text": "ok"}], "usage": USAGE}

    async def embeddings(self, request: dict[str, Any]) -> dict[str, Any]:
        self._called(request)
        data = [{"object": "embedding", "index": 0, "embedding": [0.5, 1.0]}]
        return {"object": "list", "data": data, "usage": USAGE}

    async def chat_stream(self, request: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        self._called(request)
        yield {"object": "chat.completion.chunk", "choices": [{"delta": {"content": "a"}}]}
        if self.mid_stream is not None:
            raise self.mid_stream
        yield {"object": "chat.completion.chunk", "choices": [], "usage": USAGE}

    def completions_stream(self, request: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        return self.chat_stream(request)

    async def aclose(self) -> None:
        self.closed = True


def external(name: str, task: str = "llm/v1/chat") -> EntityRoute:
    block = {"name": name, "provider": "openai", "task": task, "openai_config": {}}
    return EntityRoute(name, 50, (), external=block)


class ExternalHarness(Harness):
    def __init__(self, tmp_path: Path, route: EndpointRoute, *providers: ScriptedProvider):
        super().__init__(tmp_path, route, apps=[])
        self.providers = {p.name: p for p in providers}

        def make(block: Mapping[str, Any]) -> Provider:
            return self.providers[block["name"]]

        self.gateway = Gateway(
            self.bus,
            InProcessReplicas({}),
            llm=Llm(make_provider=make),
            recorder=self.gateway.recorder,
        )


def chat_route(*entities: EntityRoute, fallback: bool = False) -> EndpointRoute:
    policy = RoutePolicy(fallback=fallback, queriers=frozenset({"u:alice"}), track_usage=True)
    return EndpointRoute("llm", "llm-id", 1, entities, policy=policy)


def call(harness: Harness, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
    async def go() -> tuple[int, dict[str, str], bytes]:
        try:
            return await harness.call(path, body)
        finally:
            await harness.close()

    return asyncio.run(go())


CHAT = {"model": "llm", "messages": [{"role": "user", "content": "hi"}]}


def test_an_openai_chat_is_answered_by_the_provider_without_the_endpoint_name(
    tmp_path: Path,
) -> None:
    gpt = ScriptedProvider("gpt")
    harness = ExternalHarness(tmp_path, chat_route(external("gpt")), gpt)
    status, headers, payload = call(harness, "/serving-endpoints/chat/completions", CHAT)
    assert status == 200, payload
    assert json.loads(payload)["choices"][0]["message"]["content"] == "from gpt"
    assert headers["served-model-name"] == "gpt"
    assert gpt.requests == [{"messages": CHAT["messages"]}] and gpt.closed
    [usage] = harness.gateway.recorder.usage.drain().values()
    assert (usage.input_tokens, usage.output_tokens) == (4, 2)


def test_a_refused_entity_falls_back_to_the_next_one(tmp_path: Path) -> None:
    busy, spare = ScriptedProvider("busy", failures=5), ScriptedProvider("spare")
    route = chat_route(external("busy"), external("spare"), fallback=True)
    harness = ExternalHarness(tmp_path, route, busy, spare)
    answers = [call(harness, "/serving-endpoints/llm/invocations", CHAT) for _ in range(4)]
    assert {status for status, _, _ in answers} == {200}
    assert {headers["served-model-name"] for _, headers, _ in answers} == {"spare"}


def test_without_fallback_the_providers_429_is_the_answer(tmp_path: Path) -> None:
    busy = ScriptedProvider("busy", failures=1)
    harness = ExternalHarness(tmp_path, chat_route(external("busy")), busy)
    status, _, payload = call(harness, "/serving-endpoints/llm/invocations", CHAT)
    assert status == 429 and json.loads(payload)["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_a_stream_ends_in_done_and_a_failure_mid_stream_is_an_error_event(
    tmp_path: Path,
) -> None:
    fine = ScriptedProvider("fine")
    harness = ExternalHarness(tmp_path, chat_route(external("fine")), fine)
    status, headers, payload = call(
        harness, "/serving-endpoints/llm/invocations", {**CHAT, "stream": True}
    )
    assert status == 200 and headers["content-type"] == "text/event-stream"
    assert payload.decode().split("\n\n")[-2] == "data: [DONE]"

    broken = ScriptedProvider("broken", mid_stream=BerthError("upstream went away"))
    harness = ExternalHarness(tmp_path, chat_route(external("broken")), broken)
    status, _, payload = call(
        harness, "/serving-endpoints/llm/invocations", {**CHAT, "stream": True}
    )
    events = payload.decode().split("\n\n")
    assert status == 200 and "upstream went away" in events[-3] and events[-2] == "data: [DONE]"


def test_embeddings_follow_the_entity_task(tmp_path: Path) -> None:
    emb = ScriptedProvider("emb")
    harness = ExternalHarness(tmp_path, chat_route(external("emb", "llm/v1/embeddings")), emb)
    status, _, payload = call(harness, "/serving-endpoints/llm/invocations", {"input": ["a"]})
    assert status == 200 and json.loads(payload)["data"][0]["embedding"] == [0.5, 1.0]
