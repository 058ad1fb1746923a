"""OpenAI, Azure OpenAI and any OpenAI-compatible server: berth's schema is theirs.

Requests pass through with the provider's model name and ``extra_params`` merged in;
answers come back as they are, with usage filled and embeddings in the caller's encoding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import aclosing

from berth.core.errors import BerthError
from berth.providers.base import JsonObject, Stream
from berth.providers.client import ProviderClient
from berth.providers.shapes import (
    embeddings_response,
    request_body,
    settle_usage,
    wants_usage_chunk,
    with_usage,
)

CHAT, COMPLETIONS, EMBEDDINGS = "chat/completions", "completions", "embeddings"


def base_url(base: str) -> Callable[[str], str]:
    """OpenAI's layout: ``{base}/chat/completions`` and so on."""
    return lambda path: f"{base.rstrip('/')}/{path}"


def azure_url(base: str, deployment: str, api_version: str) -> Callable[[str], str]:
    root = f"{base.rstrip('/')}/openai/deployments/{deployment}"
    return lambda path: f"{root}/{path}?api-version={api_version}"


def custom_url(url: str) -> Callable[[str], str]:
    """A custom provider's URL is its base, or already the full URL of the task's route."""
    trimmed = url.rstrip("/")

    def url_for(path: str) -> str:
        return trimmed if trimmed.endswith(f"/{path}") else f"{trimmed}/{path}"

    return url_for


class OpenAiCompatible:
    """A provider that speaks the OpenAI API; ``url_for`` maps a route to its full URL."""

    def __init__(
        self, name: str, model: str, url_for: Callable[[str], str], client: ProviderClient
    ) -> None:
        self.name = name
        self._model = model
        self._url_for = url_for
        self._client = client

    async def chat(self, request: JsonObject) -> JsonObject:
        return with_usage(await self._post(CHAT, request_body(request, self._model)))

    def chat_stream(self, request: JsonObject) -> Stream:
        return self._stream(CHAT, request)

    async def completions(self, request: JsonObject) -> JsonObject:
        return with_usage(await self._post(COMPLETIONS, request_body(request, self._model)))

    def completions_stream(self, request: JsonObject) -> Stream:
        return self._stream(COMPLETIONS, request)

    async def embeddings(self, request: JsonObject) -> JsonObject:
        body = request_body(request, self._model)
        wanted = str(body.pop("encoding_format", None) or "float")
        # Floats from upstream whatever the caller asked: not every compatible server encodes.
        answer = await self._post(EMBEDDINGS, {**body, "encoding_format": "float"})
        return embeddings_response(answer, wanted)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: JsonObject) -> JsonObject:
        return await self._client.post_json(self._url_for(path), body)

    def _stream(self, path: str, request: JsonObject) -> Stream:
        # Usage is always asked for, so berth can count tokens whatever the caller wants.
        body = {
            **request_body(request, self._model),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        return settle_usage(self._chunks(self._url_for(path), body), wants_usage_chunk(request))

    async def _chunks(self, url: str, body: JsonObject) -> Stream:
        async with aclosing(self._client.post_events(url, body)) as events:
            async for event in events:
                if event.data.strip() == "[DONE]":
                    return
                yield self._chunk(event.data)

    def _chunk(self, data: str) -> JsonObject:
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise BerthError(f"The {self.name} provider streamed invalid JSON.") from exc
        if not isinstance(chunk, dict) or "error" in chunk:
            raise self._client.stream_error(data)
        return chunk
