"""A replica reached over TCP whose server listens on a Unix socket only: an open LLM's engine
(llama.cpp, vLLM, transformers) or a custom container's relay, on a Ray node, where the gateway
is on another machine.

The relay starts that server as a child (this same program, listening on a socket beside the
port file) and waits for the socket to appear, which the server makes only once it is ready:
an engine once its weights are loaded and it has answered once, a container's relay once the
container passed its startup and health probes. Only then does the relay listen on TCP and
write the port file, so "the port answers" means "ready", as for every other replica. Each TCP
connection is piped byte for byte to a connection of its own on the socket: the relay reads no
HTTP, so streamed tokens pass as they come and the server's routes (an engine's OpenAI routes,
``/health`` and ``/metrics``; a container's own) are the replica's. SIGTERM stops the listener
(no new connection), then goes to the server, which drains what is in flight; the relay ends
with it, with its exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("berth.runtime.relay")

CHUNK = 64 * 1024
READY_POLL_S = 0.05
_LISTENING = ("--host", "--port", "--port-file")


def engine_argv(argv: list[str], socket_path: str) -> list[str]:
    """The runtime's own arguments for the engine: where it listened on TCP, a socket now."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _LISTENING:
            skip = True
        elif not arg.startswith(tuple(f"{flag}=" for flag in _LISTENING)):
            kept.append(arg)
    return [sys.executable, "-m", "berth.runtime", *kept, "--socket", socket_path]


def serve(argv: list[str], host: str, port: int, port_file: Path) -> int:
    """Run the engine behind a TCP relay on ``host:port`` (0: any free port, written to
    ``port_file`` once the engine is ready) until SIGTERM or SIGINT; the engine's status."""
    return asyncio.run(_relay(argv, host, port, port_file))


async def _relay(argv: list[str], host: str, port: int, port_file: Path) -> int:
    socket_path = str(port_file.with_name(port_file.name + ".sock"))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    engine = await asyncio.create_subprocess_exec(*engine_argv(argv, socket_path))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    exited = asyncio.ensure_future(engine.wait())
    stopping = asyncio.ensure_future(stop.wait())
    server: asyncio.AbstractServer | None = None
    try:
        if await _ready(socket_path, exited, stopping):
            server = await asyncio.start_server(lambda r, w: _pipe(r, w, socket_path), host, port)
            bound = server.sockets[0].getsockname()[1]
            tmp = port_file.with_name(port_file.name + ".tmp")
            tmp.write_text(str(bound))
            tmp.replace(port_file)
            log.info("relaying %s:%s to the engine on %s", host, bound, socket_path)
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if server is not None:
            server.close()  # no new connection; those open are piped on until the engine ends
        if engine.returncode is None:
            engine.send_signal(signal.SIGTERM)
        status = await exited
        stopping.cancel()
    return status


async def _ready(
    socket_path: str, exited: asyncio.Future[int], stopping: asyncio.Future[Any]
) -> bool:
    """True once the engine's socket is there; False when the engine exits or a stop comes
    first."""
    while not os.path.exists(socket_path):
        if exited.done() or stopping.done():
            return False
        await asyncio.sleep(READY_POLL_S)
    return True


async def _pipe(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, socket_path: str
) -> None:
    try:
        engine_reader, engine_writer = await asyncio.open_unix_connection(socket_path)
    except OSError as exc:
        log.warning("the engine's socket refused a connection: %s", exc)
        client_writer.close()
        return
    try:
        await asyncio.gather(
            _copy(client_reader, engine_writer), _copy(engine_reader, client_writer)
        )
    finally:
        for writer in (engine_writer, client_writer):
            writer.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One direction, until its end closes or fails; then the write side of the other end is
    shut, so each end sees the other's end of stream (HTTP keep-alive works through)."""
    try:
        while True:
            chunk = await reader.read(CHUNK)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    except OSError:
        pass
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
