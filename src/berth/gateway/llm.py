"""External models on the data plane: OpenAI-shaped chat, completions and embeddings, served
by a provider, answered as JSON or as data-only server-sent events."""

from __future__ import annotations

import contextlib
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import Send

from berth.core.dataplane import EndpointRoute, EntityRoute, Snapshot
from berth.core.errors import BadRequest, BerthError, InvalidParameter, Unavailable
from berth.core.permissions import may
from berth.core.principal import Principal
from berth.gateway import json_body, stages
from berth.gateway.balancer import fallback_order, pick_entity
from berth.providers import Provider, provider_for
from berth.providers.base import ProviderOptions
from berth.providers.shapes import embeddings_response

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
log = logging.getLogger("berth.gateway")

SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json_body.loads(body)
    except ValueError as exc:
        raise BadRequest(f"Malformed JSON in request body: {exc}") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("The request body must be a JSON object.")
    return parsed


def models_list(snapshot: Snapshot, principal: Principal) -> dict[str, Any]:
    """``GET /serving-endpoints/models``: the endpoints the caller may query, as the OpenAI
    client lists models."""
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "owned_by": "berth", "created": 0}
            for name, route in sorted(snapshot.endpoints.items())
            if may(principal, route.policy.queriers)
        ],
    }


@dataclass(slots=True)
class Served:
    """What answering one request came to: who answered, the status, the tokens it used."""

    entity: str = ""
    status: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def count(self, usage: Any) -> None:
        """Take the token counts of an OpenAI ``usage`` object, when there is one."""
        if isinstance(usage, dict):
            self.input_tokens = _count(usage.get("prompt_tokens"))
            self.output_tokens = _count(usage.get("completion_tokens"))

    def count_json(self, payload: bytes) -> None:
        """The same from a JSON answer; bodies that mention no usage are not parsed."""
        if b'"usage"' in payload:
            with contextlib.suppress(ValueError):
                parsed = json_body.loads(payload)
                if isinstance(parsed, dict):
                    self.count(parsed.get("usage"))

    def count_events(self, chunk: bytes) -> None:
        """The same from relayed server-sent events: the last ``usage`` seen wins."""
        if b'"usage"' not in chunk:
            return
        for line in chunk.split(b"\n"):
            if line.startswith(b"data: {"):
                self.count_json(line[len(b"data: ") :])


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


@dataclass(frozen=True, slots=True)
class ReplicaCall:
    """A body on its way to a model replica, and what the answer then needs."""

    body: bytes
    stream: bool = False
    base64: bool = False
    """The caller asked for base64 embeddings; models answer floats."""


def replica_call(body: bytes, openai_request: dict[str, Any] | None) -> ReplicaCall:
    """An OpenAI-route request loses ``model`` (the endpoint's name, not the model's input);
    any JSON body loses ``encoding_format``, which berth applies to the answer. Other bodies
    go through untouched and unparsed, unless they may ask for a stream."""
    request = openai_request
    if request is None:
        if b'"stream"' not in body and b'"encoding_format"' not in body:
            return ReplicaCall(body)
        with contextlib.suppress(ValueError):
            request = json_body.loads(body)
        if not isinstance(request, dict):
            return ReplicaCall(body)
        if "encoding_format" not in request:
            return ReplicaCall(body, stream=request.get("stream") is True)
    adapted = {
        k: v
        for k, v in request.items()
        if k != "encoding_format" and (k != "model" or openai_request is None)
    }
    return ReplicaCall(
        json.dumps(adapted).encode(),
        stream=adapted.get("stream") is True,
        base64=request.get("encoding_format") == "base64",
    )


def base64_embeddings(payload: bytes) -> bytes:
    """An OpenAI embeddings answer with its vectors as base64; any other answer as it is."""
    try:
        parsed = json_body.loads(payload)
    except ValueError:
        return payload
    if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), list):
        return payload
    return json.dumps(embeddings_response(parsed, "base64")).encode()


def _falls_back(exc: BerthError) -> bool:
    return exc.http_status == 429 or exc.http_status >= 500


def _unresolved(reference: str) -> str:
    raise InvalidParameter(f"The secret reference {reference} could not be resolved.")


class Llm:
    """One provider instance per external entity config, so connections are pooled."""

    def __init__(
        self, rng: random.Random | None = None, options: ProviderOptions | None = None
    ) -> None:
        self._providers: dict[str, Provider] = {}
        self._rng = rng or random.Random()
        self._options = options or ProviderOptions()

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
        route: EndpointRoute,
        entity: EntityRoute,
        operation: str | None,
        request: dict[str, Any],
        send: Send,
        headers: list[tuple[bytes, bytes]],
    ) -> Served:
        """Answer from ``entity``'s provider; with ``fallback_config`` on, a 429 or 5xx from it
        (before any byte went out) hands the request to the endpoint's next external entity."""
        candidates = fallback_order(route.entities, entity) if route.policy.fallback else [entity]
        for attempt, candidate in enumerate(candidates, start=1):
            try:
                return await self._serve_one(candidate, operation, request, send, headers)
            except BerthError as exc:
                if attempt == len(candidates) or not _falls_back(exc):
                    raise
                log.warning(
                    "endpoint %s: %s failed (%s), falling back", route.name, candidate.name, exc
                )
        raise AssertionError("the last candidate's failure is raised")

    async def _serve_one(
        self,
        entity: EntityRoute,
        operation: str | None,
        request: dict[str, Any],
        send: Send,
        headers: list[tuple[bytes, bytes]],
    ) -> Served:
        external = entity.external
        assert external is not None
        operation = operation or TASK_OPERATIONS.get(str(external.get("task")), "chat")
        provider = self._provider(external)
        request = {k: v for k, v in request.items() if k != "model"}
        headers = [*headers, (b"served-model-name", entity.name.encode())]
        served = Served(entity.name, 200)
        if request.get("stream") and operation != "embeddings":
            await self._stream(provider, operation, request, send, headers, served)
            return served
        call = {"chat": provider.chat, "completions": provider.completions}.get(
            operation, provider.embeddings
        )
        with stages.stage("upstream"):
            answer = await call(request)
        served.count(answer.get("usage"))
        payload = json.dumps(answer).encode()
        await send_json(send, 200, payload, headers)
        return served

    async def close(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()

    def _provider(self, external: Mapping[str, Any]) -> Provider:
        key = json.dumps(external, sort_keys=True)
        provider = self._providers.get(key)
        if provider is None:
            provider = provider_for(external, _unresolved, self._options)
            self._providers[key] = provider
        return provider

    async def _stream(
        self,
        provider: Provider,
        operation: str,
        request: dict[str, Any],
        send: Send,
        headers: list[tuple[bytes, bytes]],
        served: Served,
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
            with stages.stage("upstream"):
                first = await anext(chunks, None)
            await send(
                {"type": "http.response.start", "status": 200, "headers": [*headers, *SSE_HEADERS]}
            )
            try:
                with stages.stage("streaming"):
                    if first is not None:
                        served.count(first.get("usage"))
                        await _event(send, first)
                    async for chunk in chunks:
                        served.count(chunk.get("usage"))
                        await _event(send, chunk)
            except BerthError as exc:
                await end_stream_with_error(send, exc)
                return
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def end_stream_with_error(send: Send, exc: BerthError) -> None:
    """A stream that fails after its status line went out: an error event, then the end."""
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
