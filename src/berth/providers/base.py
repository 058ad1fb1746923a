"""The one interface every external LLM provider offers: OpenAI-shaped JSON in and out.

A provider knows its upstream API and credentials; it never knows about endpoints, tokens
or the routes berth serves.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from berth.providers.egress import Egress

JsonObject = dict[str, Any]
# An async generator, so a caller that stops early can ``aclose`` it.
Stream = AsyncGenerator[JsonObject, None]


@dataclass(frozen=True, slots=True)
class ProviderOptions:
    """How a provider talks to its upstream; the defaults suit a real provider."""

    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    max_retries: int = 2
    backoff_base_s: float = 0.5
    # A Retry-After longer than this is not waited for: the error goes back to the caller.
    max_backoff_s: float = 30.0
    max_connections: int = 100
    egress: Egress = field(default_factory=Egress)
    """Which hosts the provider may be called at (checked as each connection resolves)."""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)


class Provider(Protocol):
    """An external LLM provider behind berth's one schema, the OpenAI API.

    Requests are OpenAI request bodies (``model`` is ignored: the provider sends its own
    model name). Responses always carry ``usage``. Streams yield OpenAI chunk dicts only
    (``chat.completion.chunk`` or ``text_completion``); an error before the first chunk is
    raised from the first ``__anext__``, so a caller can answer it as a plain error. Close a
    stream you stop reading early (``contextlib.aclosing``) to free its connection.
    """

    name: str

    async def chat(self, request: JsonObject) -> JsonObject: ...

    def chat_stream(self, request: JsonObject) -> Stream: ...

    async def completions(self, request: JsonObject) -> JsonObject: ...

    def completions_stream(self, request: JsonObject) -> Stream: ...

    async def embeddings(self, request: JsonObject) -> JsonObject: ...

    async def aclose(self) -> None: ...
