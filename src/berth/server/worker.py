"""One gateway worker of ``berth serve --gateway-workers N`` (``python -m berth.server.worker``).

A ``berth gateway`` process (`GatewayProcess`) that also relays every request that is not a
query to the control process (`ControlProxy`), so clients keep one base URL. It listens on
the public host:port with a socket of its own bound with ``SO_REUSEPORT``: the kernel spreads
new connections over the workers, with no process in front to become the bottleneck. It
starts listening only once it holds the controller's routes, tells the supervisor each
snapshot version it holds (so a replica is stopped only once no worker still routes to it),
and leaves when the server that started it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import threading
from dataclasses import asdict, dataclass
from typing import Any

import uvicorn
from prometheus_client import Counter
from starlette.types import Message, Receive, Scope, Send

from berth.server.control_proxy import ControlProxy
from berth.server.gateway_process import GatewayProcess
from berth.server.logs import log_config
from berth.settings import Settings

SPEC_ENV = "BERTH_GATEWAY_WORKER"
"""Carries the `WorkerSpec` (with the admin token: never on a command line)."""
FIRST_SNAPSHOT_S = 30.0
GRACEFUL_S = 30
"""In-flight requests get this long to finish once the worker is asked to stop."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    index: int
    control_url: str
    token: str
    host: str
    port: int
    acks_fd: int
    """Where each snapshot version taken is written, one decimal line per version."""
    settings: dict[str, Any]
    """The server's settings but its secrets: workers read no store and open no secret."""

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, text: str) -> WorkerSpec:
        return cls(**json.loads(text))


def worker_settings(settings: Settings) -> dict[str, Any]:
    return settings.model_dump(mode="json", exclude={"admin_token", "secret_key", "database_url"})


def bound_socket(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    """A socket bound to ``host:port``, not yet listening (the kernel sends it connections
    only once it listens); with ``reuse_port``, beside other such sockets (``SO_REUSEPORT``)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class WorkerApp:
    """Queries to the gateway, the rest to the control process; the lifespan is the gateway
    process's, with the worker's own start and stop hooked onto its messages."""

    def __init__(self, process: GatewayProcess, proxy: ControlProxy, spec: WorkerSpec) -> None:
        self._process = process
        self._proxy = proxy
        self._acks_fd = spec.acks_fd
        self._acks: asyncio.Task[None] | None = None
        served = Counter(
            "berth_worker_requests",
            "Data-plane requests answered by each gateway worker process, by its index: how "
            "the kernel spread the connections.",
            ["worker"],
            registry=process.gateway.metrics.registry,
        )
        self._served = served.labels(str(spec.index))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._process(scope, receive, self._lifespan_send(send))
        elif self._process.gateway.handles(scope["path"]):
            self._served.inc()
            await self._process(scope, receive, send)
        else:
            await self._proxy(scope, receive, send)

    def _lifespan_send(self, send: Send) -> Send:
        async def relay(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete" and not await self._first():
                message = {
                    "type": "lifespan.startup.failed",
                    "message": f"no routes from the server within {FIRST_SNAPSHOT_S:.0f}s",
                }
            elif message["type"] == "lifespan.shutdown.complete":
                await self._stop()
            await send(message)

        return relay

    async def _first(self) -> bool:
        """Wait for the controller's routes, then start telling the supervisor of each."""
        bus = self._process.bus
        await bus.newer_than(0, FIRST_SNAPSHOT_S)
        if bus.current.version == 0:
            return False
        self._acks = asyncio.create_task(self._tell_versions())
        return True

    async def _tell_versions(self) -> None:
        bus, told = self._process.bus, -1
        while True:
            snapshot = await bus.newer_than(told, 3600)
            if snapshot.version != told:
                told = snapshot.version
                os.write(self._acks_fd, b"%d\n" % told)

    async def _stop(self) -> None:
        if self._acks is not None:
            self._acks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._acks
        await self._proxy.close()


def _leave_with_parent() -> None:
    """The supervisor holds the other end of stdin: at EOF it is gone (even killed), and an
    orphaned worker must not keep the public port."""
    with contextlib.suppress(OSError):
        sys.stdin.buffer.read()
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    spec = WorkerSpec.from_env(os.environ.pop(SPEC_ENV))
    settings = Settings.model_validate(spec.settings)
    sock = bound_socket(spec.host, spec.port)
    process = GatewayProcess(spec.control_url, spec.token, settings)
    app = WorkerApp(process, ControlProxy(spec.control_url), spec)
    config = uvicorn.Config(
        app,
        log_level="info",
        log_config=log_config(settings.log_format),
        access_log=False,
        lifespan="on",
        ws="none",  # berth has no WebSocket routes: every scope is HTTP, relayed or answered
        timeout_graceful_shutdown=GRACEFUL_S,
    )
    threading.Thread(target=_leave_with_parent, name="berth-lifeline", daemon=True).start()
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
