"""Anthropic's Messages API behind berth's OpenAI schema (``anthropic_format`` translates)."""

from __future__ import annotations

import json
import time
from contextlib import aclosing

from berth.core.errors import BerthError, InvalidParameter
from berth.providers.anthropic_format import (
    chat_completion,
    messages_request,
    prompt_request,
    text_completion,
)
from berth.providers.anthropic_stream import Kind, StreamTranslator
from berth.providers.base import JsonObject, Stream
from berth.providers.client import ProviderClient
from berth.providers.shapes import settle_usage, wants_usage_chunk

DEFAULT_API_BASE = "https://api.anthropic.com"
API_VERSION = "2023-06-01"


class AnthropicProvider:
    """Chat and completions through ``POST {base}/v1/messages``; Anthropic has no embeddings."""

    name = "anthropic"

    def __init__(self, model: str, api_base: str, client: ProviderClient) -> None:
        self._model = model
        self._url = f"{api_base.rstrip('/')}/v1/messages"
        self._client = client

    async def chat(self, request: JsonObject) -> JsonObject:
        message = await self._client.post_json(self._url, messages_request(request, self._model))
        return chat_completion(message, _now())

    def chat_stream(self, request: JsonObject) -> Stream:
        return self._stream("chat", messages_request(request, self._model), request)

    async def completions(self, request: JsonObject) -> JsonObject:
        message = await self._client.post_json(self._url, prompt_request(request, self._model))
        return text_completion(message, _now())

    def completions_stream(self, request: JsonObject) -> Stream:
        return self._stream("text", prompt_request(request, self._model), request)

    async def embeddings(self, request: JsonObject) -> JsonObject:
        raise InvalidParameter(
            "Anthropic offers no embeddings: serve llm/v1/embeddings with an openai or "
            "custom provider."
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _stream(self, kind: Kind, body: JsonObject, request: JsonObject) -> Stream:
        chunks = self._chunks(StreamTranslator(kind, _now()), {**body, "stream": True})
        return settle_usage(chunks, wants_usage_chunk(request))

    async def _chunks(self, translator: StreamTranslator, body: JsonObject) -> Stream:
        async with aclosing(self._client.post_events(self._url, body)) as events:
            async for event in events:
                if event.event == "error":
                    raise self._client.stream_error(event.data)
                for chunk in translator.feed(event.event, _parse(event.data)):
                    yield chunk


def anthropic_headers(api_key: str) -> dict[str, str]:
    """Both of Anthropic's ways of authenticating: ``x-api-key`` (classic) and Bearer."""
    return {
        "x-api-key": api_key,
        "authorization": f"Bearer {api_key}",
        "anthropic-version": API_VERSION,
    }


def _parse(data: str) -> JsonObject:
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise BerthError("The anthropic provider streamed invalid JSON.") from exc
    return parsed if isinstance(parsed, dict) else {}


def _now() -> int:
    return int(time.time())
