"""Keep-alive HTTP/1.1 connections from the gateway to replicas, for whole (non-streamed) answers.

The hop only ever talks to berth's own runtime, which answers ``Content-Length`` bodies on
keep-alive connections, so a protocol that writes one request and reads one answer per
connection does all it needs. Profiling the gateway under load showed aiohttp's client taking
over a third of its CPU for this hop (URL and header objects, tracing hooks, timers per request);
this does the same work in a fraction. Streams keep aiohttp (``upstream.Upstream.stream``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import cast

MAX_HEAD_BYTES = 64 * 1024
MAX_IDLE_PER_REPLICA = 256


class ConnectionLost(Exception):
    """The connection closed before a whole answer arrived; ``answered`` tells whether any
    byte of it had come (if none, the request may be sent again)."""

    def __init__(self, answered: bool) -> None:
        super().__init__("connection lost mid-answer" if answered else "connection lost")
        self.answered = answered


class MalformedAnswer(Exception):
    """What came back is not an HTTP/1.1 answer this client reads."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection: at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._answer: asyncio.Future[Answer] | None = None
        self._head: tuple[int, dict[str, str], int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ConnectionLost(answered=bool(self._buffer)))

    def send(self, request: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None and self._answer is None
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._answer

    def done(self) -> None:
        """The answer was taken: ready for the next request."""
        self._answer = None
        self._head = None

    def data_received(self, data: bytes) -> None:
        self._buffer.extend(data)
        answer = self._answer
        if answer is None or answer.done():
            self._fail(MalformedAnswer("bytes arrived with no request waiting"))
            return
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    self._fail(MalformedAnswer("answer headers too large"))
                return
            try:
                self._head = _parse_head(bytes(self._buffer[:end]))
            except (ValueError, IndexError) as exc:
                self._fail(MalformedAnswer(str(exc)))
                return
            del self._buffer[: end + 4]
        status, headers, length = self._head
        if len(self._buffer) < length:
            return
        if len(self._buffer) > length:
            self._fail(MalformedAnswer("more bytes than the answer's Content-Length"))
            return
        body = bytes(self._buffer)
        self._buffer.clear()
        if headers.get("connection", "").lower() == "close":
            self.closed = True
        answer.set_result(Answer(status, headers, body))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)
        self.close()


def _parse_head(head: bytes) -> tuple[int, dict[str, str], int]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1.x status line: {lines[0]!r}")
    status = int(rest[:3])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise ValueError("a chunked answer on the whole-answer path")
    return status, headers, int(headers.get("content-length", "0"))


UNIX = "unix:"
"""An address ``unix:/path`` is a Unix socket (berth's sandboxed replicas); else ``host:port``."""


class ReplicaClient:
    """Pooled connections per replica address (``host:port`` or ``unix:/path``)."""

    def __init__(self) -> None:
        self._idle: defaultdict[str, deque[_Connection]] = defaultdict(deque)

    async def post(
        self, address: str, path: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> Answer:
        """Send one request and read its answer within ``timeout_s``. Raises ``OSError``
        when no connection could be made, ``ConnectionLost`` and ``MalformedAnswer`` as
        above, ``TimeoutError`` past the deadline. A kept-alive connection that turns out
        closed is replaced by a new one before anything counts as lost."""
        host = "replica" if address.startswith(UNIX) else address
        head = [f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {len(body)}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        request = "".join(head).encode("latin-1") + b"\r\n" + body
        async with asyncio.timeout(timeout_s):
            connection, reused = await self._connection(address)
            try:
                try:
                    answer = await connection.send(request)
                except ConnectionLost as exc:
                    if not reused or exc.answered:
                        raise
                    connection = await self._connect(address)  # it had closed while idle
                    answer = await connection.send(request)
            except BaseException:
                connection.close()
                raise
        connection.done()
        if connection.closed:
            connection.close()
        else:
            idle = self._idle[address]
            if len(idle) < MAX_IDLE_PER_REPLICA:
                idle.append(connection)
            else:
                connection.close()
        return answer

    async def _connection(self, address: str) -> tuple[_Connection, bool]:
        idle = self._idle.get(address)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection, True
        return await self._connect(address), False

    async def _connect(self, address: str) -> _Connection:
        loop = asyncio.get_running_loop()
        if address.startswith(UNIX):
            _, connection = await loop.create_unix_connection(_Connection, address[len(UNIX) :])
            return connection
        host, _, port = address.rpartition(":")
        _, connection = await loop.create_connection(_Connection, host, int(port))
        return connection

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                with contextlib.suppress(Exception):
                    connection.close()
        self._idle.clear()
