"""The gateway's replica client against real sockets: keep-alive reuse, a kept connection the
replica closed, answers cut short, refusals and deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from berth.gateway.replica_client import ConnectionLost, ReplicaClient

pytestmark = pytest.mark.integration

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HANDLERS: set[asyncio.Task[None]] = set()
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-berth-replica-ms: 0.5\r\n"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return await reader.readexactly(length)


async def serve(handler: Handler) -> tuple[asyncio.Server, str]:
    """A server running ``handler`` per connection, closing each connection after it."""

    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        HANDLERS.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(closing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"127.0.0.1:{port}"


async def stop(client: ReplicaClient, *servers: asyncio.Server) -> None:
    client.close()
    for server in servers:
        server.close()
        await server.wait_closed()
    await asyncio.gather(*HANDLERS)  # each ends once its connection is closed
    HANDLERS.clear()


def test_answers_come_back_over_one_kept_connection() -> None:
    connections = 0

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                body = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(OK + b"content-length: %d\r\n\r\n%s" % (len(body), body))

    async def scenario() -> None:
        server, address = await serve(echo)
        client = ReplicaClient()
        for i in range(3):
            answer = await client.post(address, "/invocations", b'{"i":%d}' % i, {}, 5)
            assert (answer.status, answer.body) == (200, b'{"i":%d}' % i)
            assert answer.headers["x-berth-replica-ms"] == "0.5"
        assert connections == 1
        await stop(client, server)

    asyncio.run(scenario())


def test_a_kept_connection_the_replica_closed_is_replaced_without_an_error() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK + b"content-length: 2\r\n\r\n{}")
        await writer.drain()  # then closes: a replica that restarted, or dropped an idle one

    async def scenario() -> None:
        server, address = await serve(once)
        client = ReplicaClient()
        first = await client.post(address, "/invocations", b"{}", {}, 5)
        await asyncio.sleep(0.05)  # the close reaches the kept connection
        second = await client.post(address, "/invocations", b"{}", {}, 5)
        assert first.status == second.status == 200
        await stop(client, server)

    asyncio.run(scenario())


def test_a_replica_that_dies_before_answering_is_a_lost_connection_nothing_answered() -> None:
    async def dies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK + b"content-length: 100\r\n\r\n{")
        await writer.drain()

    async def scenario() -> None:
        client = ReplicaClient()
        for handler, answered in ((dies, False), (half, True)):
            server, address = await serve(handler)
            with pytest.raises(ConnectionLost) as lost:
                await client.post(address, "/invocations", b"{}", {}, 5)
            assert lost.value.answered is answered
            await stop(client, server)

    asyncio.run(scenario())


def test_refusals_and_deadlines() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # until the client gives up and closes

    async def scenario() -> None:
        client = ReplicaClient()
        server, address = await serve(silent)
        server.close()
        await server.wait_closed()
        with pytest.raises(OSError):
            await client.post(address, "/invocations", b"{}", {}, 5)
        server, address = await serve(silent)
        with pytest.raises(TimeoutError):
            await client.post(address, "/invocations", b"{}", {}, 0.1)
        await stop(client, server)

    asyncio.run(scenario())
