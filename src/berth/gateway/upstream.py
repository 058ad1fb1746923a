"""Forwarding a body to a replica over pooled keep-alive connections.

Whole answers go through ``replica_client`` (a small HTTP/1.1 protocol for berth's own runtime:
profiling showed aiohttp's client taking over a third of the gateway's CPU, as httpx took
three quarters before it); streamed answers through aiohttp's client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from berth.core.errors import BerthError, DeadlineExceeded, Unavailable
from berth.gateway.replica_client import UNIX, ConnectionLost, MalformedAnswer, ReplicaClient

Headers = dict[str, str]
"""What goes to the replica with the body: its content type, the request id, log switches."""


class ReplicaUnreachable(Unavailable):
    """The replica answered nothing: the connection was refused, or dropped before any byte
    of an answer (the process died). Scoring has no side effects a second try could repeat,
    so the gateway may send the request to another replica."""


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    body: bytes
    content_type: str
    replica_ms: float | None
    batch_ms: float | None = None
    """How long the request waited in the replica for its batch to form (batching on)."""


class StreamedAnswer(Protocol):
    """A replica's answer, read as it arrives."""

    @property
    def status(self) -> int: ...

    @property
    def content_type(self) -> str: ...

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


class ReplicaTransport(Protocol):
    """How the gateway reaches replicas. `Upstream` speaks HTTP over sockets; tests may
    hand the gateway one that calls a replica application in process."""

    async def post(
        self, address: str, path: str, body: bytes, headers: Headers, timeout_s: float
    ) -> UpstreamResponse: ...

    def stream(
        self,
        address: str,
        path: str,
        body: bytes,
        headers: Headers,
        timeout_s: float,
        *,
        method: str = "POST",
    ) -> contextlib.AbstractAsyncContextManager[StreamedAnswer]: ...

    def forget(self, addresses: set[str]) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _AiohttpAnswer:
    response: aiohttp.ClientResponse

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def content_type(self) -> str:
        return self.response.content_type

    async def read(self) -> bytes:
        return await self.response.read()

    def chunks(self) -> AsyncIterator[bytes]:
        return self.response.content.iter_any()


class Upstream:
    """One pooled HTTP client for every replica of this process, made on first use."""

    def __init__(self, max_connections: int = 1024) -> None:
        self._max_connections = max_connections
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._streaming: dict[aiohttp.ClientSession, int] = {}
        """Streams being relayed per session: a session is closed only once it has none."""
        self._forgotten: set[aiohttp.ClientSession] = set()
        self._closing: set[asyncio.Future[None]] = set()
        self._replicas = ReplicaClient()

    def _client(self, address: str) -> tuple[aiohttp.ClientSession, str]:
        """The session that reaches ``address`` and the URL base to use with it: one for
        every TCP replica, one per Unix socket (aiohttp binds a Unix connector to a path)."""
        key = address if address.startswith(UNIX) else ""
        session = self._sessions.get(key)
        if session is None:
            # A connection per stream: a stream outlasts a connect many times over, and a
            # kept-alive one that the replica closed while idle (llama.cpp does after 5 s)
            # would fail the next stream as if the replica were gone.
            connector: aiohttp.BaseConnector
            if key:
                connector = aiohttp.UnixConnector(path=address[len(UNIX) :], force_close=True)
            else:
                connector = aiohttp.TCPConnector(
                    limit=self._max_connections, limit_per_host=0, force_close=True
                )
            session = self._sessions[key] = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return session, "http://replica" if key else f"http://{address}"

    def forget(self, addresses: set[str]) -> None:
        """Close the sessions of Unix-socket replicas no longer routed to, each once the
        streams it relays have ended: a replica being drained is still answering them."""
        for key in [k for k in self._sessions if k and k not in addresses]:
            session = self._sessions.pop(key)
            if self._streaming.get(session):
                self._forgotten.add(session)
            else:
                self._close_later(session)

    def _close_later(self, session: aiohttp.ClientSession) -> None:
        closing = asyncio.ensure_future(session.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def post(
        self, address: str, path: str, body: bytes, headers: Headers, timeout_s: float
    ) -> UpstreamResponse:
        try:
            answer = await self._replicas.post(address, path, body, headers, timeout_s)
        except OSError as exc:
            raise ReplicaUnreachable(f"Replica at {address} refused the connection.") from exc
        except ConnectionLost as exc:
            if not exc.answered:
                raise ReplicaUnreachable(f"Replica at {address} dropped the connection.") from exc
            raise BerthError(f"The replica at {address} failed mid-answer.") from exc
        except MalformedAnswer as exc:
            raise BerthError(f"The replica at {address} answered nonsense: {exc}") from exc
        except TimeoutError as exc:
            raise DeadlineExceeded(f"The model did not answer within {timeout_s:.0f}s.") from exc
        replica_ms = answer.headers.get("x-berth-replica-ms")
        batch_ms = answer.headers.get("x-berth-batch-ms")
        return UpstreamResponse(
            answer.status,
            answer.body,
            answer.headers.get("content-type", "application/json"),
            float(replica_ms) if replica_ms else None,
            float(batch_ms) if batch_ms else None,
        )

    def stream(
        self,
        address: str,
        path: str,
        body: bytes,
        headers: Headers,
        timeout_s: float,
        *,
        method: str = "POST",
    ) -> contextlib.AbstractAsyncContextManager[StreamedAnswer]:
        """The replica's answer, to be read as it arrives; ``timeout_s`` bounds each wait for
        bytes, not the whole stream. Only a custom container's raw invoke sends a ``GET``."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        return self._request(method, address, path, body, headers, timeout)

    @contextlib.asynccontextmanager
    async def _request(
        self,
        method: str,
        address: str,
        path: str,
        body: bytes,
        headers: Headers,
        timeout: aiohttp.ClientTimeout,
    ) -> AsyncIterator[StreamedAnswer]:
        session, base = self._client(address)
        self._streaming[session] = self._streaming.get(session, 0) + 1
        try:
            with _replica_errors(address, timeout.total or timeout.sock_read or 0.0):
                async with session.request(
                    method,
                    f"{base}{path}",
                    data=body,
                    headers=headers,
                    timeout=timeout,
                ) as response:
                    yield _AiohttpAnswer(response)
        finally:
            self._streaming[session] -= 1
            if not self._streaming[session]:
                del self._streaming[session]
                if session in self._forgotten:
                    self._forgotten.discard(session)
                    self._close_later(session)

    async def close(self) -> None:
        self._replicas.close()
        for session in [*self._sessions.values(), *self._forgotten]:
            await session.close()
        self._sessions.clear()
        self._forgotten.clear()


@contextlib.contextmanager
def _replica_errors(address: str, timeout_s: float) -> Iterator[None]:
    """aiohttp's failures as berth errors; one that means "no answer at all" may be retried."""
    try:
        yield
    except aiohttp.ClientConnectorError as exc:
        raise ReplicaUnreachable(f"Replica at {address} refused the connection.") from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise ReplicaUnreachable(f"Replica at {address} dropped the connection.") from exc
    except TimeoutError as exc:
        raise DeadlineExceeded(f"The model did not answer within {timeout_s:.0f}s.") from exc
    except aiohttp.ClientError as exc:
        raise BerthError(f"The replica at {address} failed mid-request: {exc}") from exc
