"""A small HTTP/1.1 server on asyncio for the replica runtime.

Only what berth's gateway, health probes and curl send is supported: requests with a
``Content-Length`` body (or none), keep-alive, pipelining, ``Expect: 100-continue``; answers
whole or, for streams, chunked. It exists because the runtime must run in model environments
that lack berth's server dependencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

MAX_HEADER_BYTES = 64 * 1024
PAUSE_ABOVE_BYTES = 1024 * 1024
"""Bytes of requests read ahead while one is served, before the socket stops being read
(pausing and resuming around every request would cost two system calls each)."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())
    stream: AsyncGenerator[bytes, None] | None = None
    """When set, the body is sent chunk by chunk as it is produced (``body`` is ignored)."""


Handler = Callable[[Request], Awaitable[Response]]


def error_response(status: int, error_code: str, message: str) -> Response:
    """A Databricks-shaped error answer."""
    return Response(status, json.dumps({"error_code": error_code, "message": message}).encode())


def encode_response(response: Response, keep_alive: bool, elapsed_ms: str | None = None) -> bytes:
    """Serialise ``response``; ``elapsed_ms`` (the replica's own time) goes to the gateway."""
    reason = HTTPStatus(response.status).phrase
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"content-type: {response.content_type}",
        "transfer-encoding: chunked"
        if response.stream is not None
        else f"content-length: {len(response.body)}",
    ]
    if elapsed_ms is not None:
        lines.append(f"x-berth-replica-ms: {elapsed_ms}")
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    if not keep_alive:
        lines.append("connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if response.stream is not None else head + response.body


class HttpProtocol(asyncio.Protocol):
    """One connection: parse a request, hand it to the handler, write the answer, repeat."""

    def __init__(self, handler: Handler, max_body: int) -> None:
        self._handler = handler
        self._max_body = max_body
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._busy = False
        self._paused = False
        self._continued = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer.extend(data)
        if not self._busy:
            self._next()
        elif len(self._buffer) > PAUSE_ABOVE_BYTES and self._transport is not None:
            # Pipelined requests wait in the buffer; past this, let TCP push back instead.
            self._transport.pause_reading()
            self._paused = True

    def _next(self) -> None:
        """Take one complete request off the buffer, if there is one, and serve it."""
        transport = self._transport
        if transport is None:
            return
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:
                self._reject(431, "request headers too large")
            return
        try:
            method, path, headers = _parse_head(bytes(self._buffer[:end]))
        except ValueError as exc:
            self._reject(400, str(exc))
            return
        if headers.get("transfer-encoding"):
            self._reject(411, "send the body with a Content-Length")
            return
        length = int(headers.get("content-length", "0") or 0)
        if length > self._max_body:
            self._reject(413, f"body of {length} bytes is over the {self._max_body} byte limit")
            return
        if len(self._buffer) < end + 4 + length:
            if headers.get("expect", "").lower() == "100-continue" and not self._continued:
                self._continued = True
                transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        body = bytes(self._buffer[end + 4 : end + 4 + length])
        del self._buffer[: end + 4 + length]
        self._continued = False
        keep_alive = headers.get("connection", "").lower() != "close"
        self._busy = True
        task = asyncio.get_running_loop().create_task(
            self._serve(Request(method, path, headers, body), keep_alive)
        )
        task.add_done_callback(_consume)

    async def _serve(self, request: Request, keep_alive: bool) -> None:
        started = time.perf_counter()
        try:
            response = await self._handler(request)
        except Exception as exc:  # the handler maps expected errors; this is the last guard
            response = error_response(500, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
        transport = self._transport
        if transport is None:
            return
        elapsed_ms = f"{(time.perf_counter() - started) * 1000:.3f}"
        transport.write(encode_response(response, keep_alive, elapsed_ms))
        if response.stream is not None and not await self._send_chunks(response.stream):
            return
        if not keep_alive:
            transport.close()
            return
        self._busy = False
        if self._paused:
            self._paused = False
            transport.resume_reading()
        if self._buffer:
            self._next()

    async def _send_chunks(self, chunks: AsyncGenerator[bytes, None]) -> bool:
        """Write each chunk as it comes; False when the client went away mid-stream."""
        try:
            async for chunk in chunks:
                transport = self._transport
                if transport is None:
                    return False
                if chunk:
                    transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        finally:
            await chunks.aclose()
        if self._transport is None:
            return False
        self._transport.write(b"0\r\n\r\n")
        return True

    def _reject(self, status: int, message: str) -> None:
        assert self._transport is not None
        response = error_response(status, "BAD_REQUEST", message)
        self._transport.write(encode_response(response, keep_alive=False))
        self._transport.close()


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError(f"malformed request line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], headers


def _consume(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        task.exception()


async def start_server(handler: Handler, host: str, port: int, max_body: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HttpProtocol(handler, max_body), host=host, port=port, reuse_address=True
    )


async def start_unix_server(handler: Handler, path: str, max_body: int) -> asyncio.Server:
    """Listen on a Unix socket that appears at ``path`` only once it accepts (bound under a
    temporary name, then renamed over whatever was there)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path + ".tmp")
    listener.bind(path + ".tmp")
    os.chmod(path + ".tmp", 0o600)
    listener.listen(1024)
    os.replace(path + ".tmp", path)
    loop = asyncio.get_running_loop()
    return await loop.create_unix_server(lambda: HttpProtocol(handler, max_body), sock=listener)
