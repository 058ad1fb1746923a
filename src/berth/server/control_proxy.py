"""A gateway worker's way to everything that is not the data plane: the management API,
``/metrics``, health, docs and uploads are relayed to the control process as they come.

Bodies stream both ways (an artifact upload or a long poll is never held whole), status and
headers pass unchanged but for hop-by-hop ones, and a control process that cannot be reached
is answered as the Databricks error ``TEMPORARILY_UNAVAILABLE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
from starlette.types import Message, Receive, Scope, Send
from yarl import URL

HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    )
)
"""Headers that describe one connection, not the message: never relayed."""
SERVER_SET = frozenset((b"date", b"server"))
"""Headers the worker's own HTTP server adds to every answer."""
ANSWERED_HERE = frozenset((b"expect",))
"""``Expect: 100-continue`` was answered by the worker's server when the body was read."""


class ControlProxy:
    """An ASGI app relaying HTTP requests to ``control_url`` over one pooled aiohttp session."""

    def __init__(self, control_url: str, connect_timeout_s: float = 10.0) -> None:
        self._control = control_url.rstrip("/")
        self._connect_timeout = connect_timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                auto_decompress=False,
                # What the caller sent, and only that: no default Accept, User-Agent...
                skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            )
        return self._session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Relay one request; a caller that goes away ends the relay (a long poll, a stream)
        rather than leaving it to run on unread."""
        body_read = asyncio.Event()
        body: AsyncIterator[bytes] | None = None
        if any(k in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"]):
            body = _body(receive, body_read)
        else:
            body_read.set()
        relay = asyncio.ensure_future(self._relay(scope, body, send))
        gone = asyncio.ensure_future(_disconnected(receive, body_read))
        try:
            await asyncio.wait((relay, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (relay, gone):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if relay.done() and not relay.cancelled():
            relay.result()  # raises what the relay raised

    async def _relay(self, scope: Scope, body: AsyncIterator[bytes] | None, send: Send) -> None:
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k not in HOP_BY_HOP and k not in ANSWERED_HERE
        ]
        path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope["query_string"]
        target = self._control + path.decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout)
        try:
            response = await self._client().request(
                scope["method"],
                URL(target, encoded=True),
                headers=headers,
                data=body,
                timeout=timeout,
                allow_redirects=False,
            )
        except aiohttp.ClientError as exc:
            await _unavailable(send, f"The berth control process did not answer: {exc}.")
            return
        async with response:
            relayed = [
                (k.lower(), v)
                for k, v in response.raw_headers
                if k.lower() not in HOP_BY_HOP and k.lower() not in SERVER_SET
            ]
            await send(
                {"type": "http.response.start", "status": response.status, "headers": relayed}
            )
            # A failure from here on propagates: the server drops the connection, so the
            # caller sees a cut answer, not a short one that looks whole.
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _body(receive: Receive, done: asyncio.Event) -> AsyncIterator[bytes]:
    """The request's body as it arrives; ``done`` is set once it is all read."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("the caller went away while sending its request")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            done.set()
            return


async def _disconnected(receive: Receive, body_read: asyncio.Event) -> None:
    """Returns when the caller disconnects: ``receive`` is ours once the body is read."""
    await body_read.wait()
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unavailable(send: Send, message: str) -> None:
    payload = json.dumps({"error_code": "TEMPORARILY_UNAVAILABLE", "message": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"retry-after", b"1"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
