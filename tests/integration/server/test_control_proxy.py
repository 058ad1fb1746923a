"""The worker's relay to the control process, between two real uvicorn servers: bodies stream
both ways unchanged, status and headers pass, a caller that leaves ends the relay, and an
absent control process is a Databricks-shaped 503."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from berth.server.control_proxy import ControlProxy

pytestmark = pytest.mark.integration

App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Control:
    """Stands for the control process: echoes what it got, or holds a stream open."""

    def __init__(self) -> None:
        self.stream_ended = asyncio.Event()
        self.seen: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/forever":
            await self._forever(receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        self.seen = {
            "path": scope["raw_path"],
            "query": scope["query_string"],
            "headers": scope["headers"],
            "chunks": len([c for c in chunks if c]),
        }
        body = b"".join(chunks)
        headers = [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"x-upstream", b"yes")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        for at in range(0, len(body), 65536):
            piece = {"body": body[at : at + 65536], "more_body": True}
            await send({"type": "http.response.body", **piece})
        await send({"type": "http.response.body", "body": b""})

    async def _forever(self, receive: Receive, send: Send) -> None:
        """Like a long poll: one line, then nothing until the caller goes."""
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        self.stream_ended.set()


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_config=None, lifespan="off", access_log=False, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not task.done(), task
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def proxied(control_url: str) -> AsyncIterator[httpx.AsyncClient]:
    proxy = ControlProxy(control_url)
    try:
        async with serving(proxy) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield client
    finally:
        await proxy.close()


def test_bodies_stream_both_ways_with_status_and_headers() -> None:
    upload = bytes(range(256)) * 16_384  # 4 MiB

    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(upload), 100_000):
            yield upload[at : at + 100_000]

    async def scenario() -> None:
        control = Control()
        async with serving(control) as url, proxied(url) as client:
            answer = await client.post(
                "/api/2.0/models/a%2Fb/versions?x=1&y=%20z",
                content=chunks(),
                headers={"x-caller": "me", "content-type": "application/x-tar"},
            )
            assert answer.status_code == 201
            assert answer.content == upload
            assert answer.headers.get_list("set-cookie") == ["a=1", "b=2"]
            assert answer.headers["x-upstream"] == "yes"
            assert len(answer.headers.get_list("server")) == 1
            assert control.seen["path"] == b"/api/2.0/models/a%2Fb/versions"
            assert control.seen["query"] == b"x=1&y=%20z"
            sent = dict(control.seen["headers"])
            assert sent[b"x-caller"] == b"me" and sent[b"content-type"] == b"application/x-tar"
            assert b"user-agent" in sent and sent[b"user-agent"].startswith(b"python-httpx")
            assert control.seen["chunks"] > 1, "the upload was relayed as it came"

            bodiless = await client.get("/healthz")
            assert bodiless.status_code == 201 and bodiless.content == b""
            assert b"content-type" not in dict(control.seen["headers"])

    asyncio.run(scenario())


def test_a_caller_that_leaves_ends_a_silent_relayed_stream() -> None:
    async def scenario() -> None:
        control = Control()
        async with serving(control) as url, proxied(url) as client:
            async with client.stream("GET", "/forever") as answer:
                assert answer.status_code == 200
                async for line in answer.aiter_lines():
                    assert line == "tick"
                    break
            async with asyncio.timeout(10):
                await control.stream_ended.wait()

    asyncio.run(scenario())


def test_an_absent_control_process_is_a_503_the_clients_understand() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening

    async def scenario() -> None:
        async with proxied(nobody) as client:
            answer = await client.get("/api/2.0/serving-endpoints")
        assert answer.status_code == 503
        assert answer.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert answer.headers["retry-after"] == "1"

    asyncio.run(scenario())
