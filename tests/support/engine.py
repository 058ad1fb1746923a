"""An inference engine's part for the gateway's unit tests: `EngineStandIn` answers the OpenAI
routes as llama.cpp's server does (a chat completion with its usage, or events one token at a
time, the usage last), in process. llama.cpp is a third-party engine, and unit tests start no
process; the integration tests run the real one."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from berth.core.dataplane import (
    EndpointRoute,
    EntityRoute,
    ProvisionedBand,
    ReplicaProtocol,
    ReplicaRoute,
    RoutePolicy,
)
from berth.gateway.upstream import Headers, ReplicaUnreachable, UpstreamResponse

PROMPT_TOKENS = 5
ENTITY = "smol-1"


def engine_route(
    name: str = "llm",
    *addresses: str,
    band: ProvisionedBand | None = None,
    slots: int = 4,
    **policy: Any,
) -> EndpointRoute:
    """An endpoint serving one open LLM (``ENTITY``) on engine replicas at ``addresses``."""
    replicas = tuple(
        ReplicaRoute(f"{name}.{ENTITY}.{i}", address, slots)
        for i, address in enumerate(addresses or ("e0",))
    )
    entity = EntityRoute(ENTITY, 100, replicas, protocol=ReplicaProtocol.OPENAI, provisioned=band)
    rules = RoutePolicy(queriers=frozenset({"u:alice"}), **policy)
    return EndpointRoute(name, f"{name}-id", 1, (entity,), rules)


@dataclass(frozen=True, slots=True)
class _Events:
    parts: tuple[bytes, ...]
    gap_s: float

    @property
    def status(self) -> int:
        return 200

    @property
    def content_type(self) -> str:
        return "text/event-stream"

    async def read(self) -> bytes:
        return b"".join(self.parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            await asyncio.sleep(self.gap_s)
            yield part


class EngineStandIn:
    """Engine replicas by address: each answer generates ``max_tokens`` tokens (default 3),
    ``gap_s`` apart in a stream, once ``open`` is set (tests clear it to keep requests on
    the engine). Events are cut in two chunks each, as a socket may deliver them."""

    def __init__(self, *addresses: str, gap_s: float = 0.0) -> None:
        self.addresses = set(addresses or ("e0",))
        self.gap_s = gap_s
        self.open = asyncio.Event()
        self.open.set()
        self.running = 0
        """Requests the engines hold now."""
        self.bodies: list[dict[str, Any]] = []

    async def _take(self, address: str, path: str, body: bytes) -> dict[str, Any]:
        if address not in self.addresses:
            raise ReplicaUnreachable(f"Replica at {address} refused the connection.")
        assert path in ("/v1/chat/completions", "/v1/completions"), path
        request: dict[str, Any] = json.loads(body)
        self.bodies.append(request)
        self.running += 1
        try:
            await self.open.wait()
        finally:
            self.running -= 1
        return request

    async def post(
        self, address: str, path: str, body: bytes, headers: Headers, timeout_s: float
    ) -> UpstreamResponse:
        request = await self._take(address, path, body)
        tokens = request.get("max_tokens", 3)
        answer = {
            "object": "chat.completion",
            "choices": [{"message": {"role": "assistant", "content": "ab" * tokens}}],
            "usage": _usage(tokens),
        }
        return UpstreamResponse(200, json.dumps(answer).encode(), "application/json", None)

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
    ) -> AsyncIterator[_Events]:
        request = await self._take(address, path, body)
        assert request["stream_options"] == {"include_usage": True}
        tokens = request.get("max_tokens", 3)
        events = [
            {"choices": [{"delta": {"role": "assistant", "content": None}}]},
            *({"choices": [{"delta": {"content": f"t{i}"}}]} for i in range(tokens)),
            {"choices": [{"delta": {}, "finish_reason": "length"}]},
            {"choices": [], "usage": _usage(tokens)},
        ]
        raw = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
        raw.append(b"data: [DONE]\n\n")
        yield _Events(tuple(part for r in raw for part in (r[:9], r[9:])), self.gap_s)

    def forget(self, addresses: set[str]) -> None:
        """No connection is held."""

    async def close(self) -> None:
        self.open.set()


def _usage(completion: int) -> dict[str, int]:
    total = PROMPT_TOKENS + completion
    return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": completion, "total_tokens": total}
