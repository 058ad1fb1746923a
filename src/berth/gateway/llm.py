"""External models on the data plane: OpenAI-shaped chat, completions and embeddings, served
by a provider, answered as JSON or as data-only server-sent events."""

from __future__ import annotations

import contextlib
import json
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import Send

from berth.core.dataplane import EndpointRoute, EntityRoute, Snapshot
from berth.core.errors import BerthError, InvalidParameter, Unavailable
from berth.core.permissions import may
from berth.core.principal import Principal
from berth.gateway import stages
from berth.gateway.balancer import fallback_order, pick_entity
from berth.gateway.exchange import Exchange, Served
from berth.gateway.responses import (
    SSE_HEADERS,
    Headers,
    end_stream,
    end_stream_with_error,
    send_event,
    send_json,
)
from berth.providers import Provider, provider_for
from berth.providers.base import ProviderOptions

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
ProviderFactory = Callable[[Mapping[str, Any]], Provider]


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


def _falls_back(exc: BerthError) -> bool:
    return exc.http_status == 429 or exc.http_status >= 500


def _unresolved(reference: str) -> str:
    raise InvalidParameter(f"The secret reference {reference} could not be resolved.")


class Llm:
    """One provider instance per external entity config, so connections are pooled."""

    def __init__(
        self,
        rng: random.Random | None = None,
        options: ProviderOptions | None = None,
        *,
        make_provider: ProviderFactory | None = None,
    ) -> None:
        """``make_provider`` turns an entity's ``external_model`` block into its provider
        (default: ``providers.provider_for`` with ``options``)."""
        self._providers: dict[str, Provider] = {}
        self._rng = rng or random.Random()
        given = options or ProviderOptions()
        self._make = make_provider or (lambda block: provider_for(block, _unresolved, given))

    def external_entity(self, route: EndpointRoute) -> EntityRoute | None:
        """The entity to serve this request, when the endpoint serves external models."""
        if not any(e.external is not None for e in route.entities):
            return None
        entity = pick_entity(route.entities, self._rng)
        if entity is None:
            raise Unavailable(f"Endpoint '{route.name}' is not ready yet.", retry_after=2)
        return entity

    async def serve(self, ex: Exchange, entity: EntityRoute, headers: Headers) -> Served:
        """Answer from ``entity``'s provider; with ``fallback_config`` on, a 429 or 5xx from it
        (before any byte went out) hands the request to the endpoint's next external entity."""
        route = ex.route
        assert route is not None
        request = ex.json_object()
        candidates = fallback_order(route.entities, entity) if route.policy.fallback else [entity]
        for attempt, candidate in enumerate(candidates, start=1):
            try:
                return await self._serve_one(candidate, ex.operation, request, ex.send, headers)
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
        headers: Headers,
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
            provider = self._make(external)
            self._providers[key] = provider
        return provider

    async def _stream(
        self,
        provider: Provider,
        operation: str,
        request: dict[str, Any],
        send: Send,
        headers: Headers,
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
                        await send_event(send, first)
                    async for chunk in chunks:
                        served.count(chunk.get("usage"))
                        await send_event(send, chunk)
            except BerthError as exc:
                await end_stream_with_error(send, exc)
                return
            await end_stream(send)
