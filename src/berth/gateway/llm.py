"""External models on the data plane: OpenAI-shaped chat, completions and embeddings, served
by a provider, answered as JSON or as data-only server-sent events."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Mapping
from typing import Any

from starlette.types import Send

from berth.core.dataplane import EndpointRoute, EntityRoute, Snapshot
from berth.core.errors import BadRequest, BerthError, InvalidParameter, Unavailable
from berth.gateway.balancer import pick_entity
from berth.providers import Provider, provider_for

OPENAI_ALIASES = {
    "/serving-endpoints/chat/completions": "chat",
    "/serving-endpoints/completions": "completions",
    "/serving-endpoints/embeddings": "embeddings",
}
MODELS_PATH = "/serving-endpoints/models"
TASK_OPERATIONS = {
    "llm/v1/chat": "chat",
    "llm/v1/completions": "completions",
    "llm/v1/embeddings": "embeddings",
}
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"Malformed JSON in request body: {exc}") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("The request body must be a JSON object.")
    return parsed


def models_list(snapshot: Snapshot) -> dict[str, Any]:
    """``GET /serving-endpoints/models``: every endpoint, as the OpenAI client lists models."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "owned_by": "berth", "created": 0}
            for name in sorted(snapshot.endpoints)
        ],
    }


def _unresolved(reference: str) -> str:
    raise InvalidParameter(f"The secret reference {reference} could not be resolved.")


class Llm:
    """One provider instance per external entity config, so connections are pooled."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._providers: dict[str, Provider] = {}
        self._rng = rng or random.Random()

    def external_entity(self, route: EndpointRoute) -> EntityRoute | None:
        """The entity to serve this request, when the endpoint serves external models."""
        if not any(e.external is not None for e in route.entities):
            return None
        entity = pick_entity(route.entities, self._rng)
        if entity is None:
            raise Unavailable(f"Endpoint '{route.name}' is not ready yet.", retry_after=2)
        return entity

    async def serve(
        self,
        entity: EntityRoute,
        operation: str | None,
        request: dict[str, Any],
        send: Send,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        external = entity.external
        assert external is not None
        operation = operation or TASK_OPERATIONS.get(str(external.get("task")), "chat")
        provider = self._provider(external)
        request = {k: v for k, v in request.items() if k != "model"}
        headers = [*headers, (b"served-model-name", entity.name.encode())]
        if request.get("stream") and operation != "embeddings":
            await self._stream(provider, operation, request, send, headers)
            return
        call = {"chat": provider.chat, "completions": provider.completions}.get(
            operation, provider.embeddings
        )
        answer = await call(request)
        payload = json.dumps(answer).encode()
        await send_json(send, 200, payload, headers)

    async def close(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()

    def _provider(self, external: Mapping[str, Any]) -> Provider:
        key = json.dumps(external, sort_keys=True)
        provider = self._providers.get(key)
        if provider is None:
            provider = provider_for(external, _unresolved)
            self._providers[key] = provider
        return provider

    async def _stream(
        self,
        provider: Provider,
        operation: str,
        request: dict[str, Any],
        send: Send,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        """Data-only SSE ending in ``data: [DONE]`` (MLflow's reader breaks on anything else).

        The first chunk is awaited before the headers go out, so a refused request still gets
        a proper error status."""
        chunks = (
            provider.chat_stream(request)
            if operation == "chat"
            else (provider.completions_stream(request))
        )
        async with contextlib.aclosing(chunks):
            first = await anext(chunks, None)
            await send(
                {"type": "http.response.start", "status": 200, "headers": [*headers, *SSE_HEADERS]}
            )
            try:
                if first is not None:
                    await _event(send, first)
                async for chunk in chunks:
                    await _event(send, chunk)
            except BerthError as exc:
                await _event(send, {"error": {"message": exc.message, "code": exc.error_code}})
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def _event(send: Send, chunk: Mapping[str, Any]) -> None:
    data = b"data: " + json.dumps(chunk).encode() + b"\n\n"
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def send_json(
    send: Send, status: int, payload: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    headers = [
        *headers,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
