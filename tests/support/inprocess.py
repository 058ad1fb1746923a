"""A `ReplicaTransport` that hands requests to real `ReplicaApp` objects in this process: the
gateway's unit tests run the real replica runtime with no socket and no process between."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from berth.gateway.upstream import Headers, ReplicaUnreachable, StreamedAnswer, UpstreamResponse
from berth.runtime.app import ReplicaApp
from berth.runtime.http import Request, Response


@dataclass(frozen=True, slots=True)
class _Streamed:
    response: Response

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def content_type(self) -> str:
        return self.response.content_type

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def chunks(self) -> AsyncIterator[bytes]:
        if self.response.stream is None:
            yield self.response.body
            return
        async for chunk in self.response.stream:
            yield chunk


class InProcessReplicas:
    """Replica apps by address; an address with no app refuses, as a dead replica's does."""

    def __init__(self, apps: dict[str, ReplicaApp]) -> None:
        self.apps = apps
        self.calls: list[str] = []
        """The addresses posted or streamed to, in order."""

    async def _call(
        self, address: str, path: str, body: bytes, headers: Headers, method: str = "POST"
    ) -> Response:
        self.calls.append(address)
        app = self.apps.get(address)
        if app is None:
            raise ReplicaUnreachable(f"Replica at {address} refused the connection.")
        return await app(Request(method, path, dict(headers), body))

    async def post(
        self, address: str, path: str, body: bytes, headers: Headers, timeout_s: float
    ) -> UpstreamResponse:
        started = time.perf_counter()
        response = await self._call(address, path, body, headers)
        extra = dict(response.headers)
        batch_ms = extra.get("x-berth-batch-ms")
        return UpstreamResponse(
            response.status,
            response.body,
            response.content_type,
            (time.perf_counter() - started) * 1000,
            float(batch_ms) if batch_ms else None,
        )

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
    ) -> AsyncIterator[StreamedAnswer]:
        yield _Streamed(await self._call(address, path, body, headers, method))

    def forget(self, addresses: set[str]) -> None:
        """Nothing to close: no connection is held."""

    async def close(self) -> None:
        for app in self.apps.values():
            app.close()
