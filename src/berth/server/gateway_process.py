"""``berth gateway``: the data plane alone, in a process of its own.

It follows the controller's snapshots by long-polling ``GET /api/2.0/berth/data-plane`` of a
running ``berth serve``, answers queries exactly as the server's own gateway does, shares
rate-limit counters through Redis (``BERTH_REDIS_URL``), and ships its usage sums to the
server, which stores them. It needs an admin token: the snapshot carries token hashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict

import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

from berth.core.dataplane import SnapshotBus
from berth.core.heap import freeze_startup_heap
from berth.gateway.build import build_gateway
from berth.gateway.load_reporter import LoadReporter
from berth.gateway.subscriber import Subscriber
from berth.metrics import Metrics
from berth.secrets import SecretCipher, load_key
from berth.server.logs import log_config
from berth.settings import Settings

log = logging.getLogger(__name__)

USAGE_EVERY_S = 2.0
NOT_HERE = json.dumps(
    {
        "error_code": "ENDPOINT_NOT_FOUND",
        "message": "This is a berth gateway: it serves "
        "/serving-endpoints/... queries only; send management calls to berth serve.",
    }
).encode()


class GatewayProcess:
    """The ASGI app of a stand-alone gateway, with its followers as lifespan tasks."""

    def __init__(self, control_url: str, token: str, settings: Settings) -> None:
        """Inference tables and access logs go under this machine's ``$BERTH_SHARED_DIR``
        (or ``$BERTH_HOME``): the server reads them back only where it mounts the same."""
        self._control = control_url.rstrip("/")
        self._token = token
        self._bus = SnapshotBus()
        self._load = LoadReporter(self._control, token, lambda: self.gateway.load())
        self.gateway = build_gateway(
            settings, self._bus, metrics=Metrics(), on_demand=self._load.demand
        )
        cipher = SecretCipher(load_key(settings))
        self._subscriber = Subscriber(self._control, token, self._bus, cipher)

    @property
    def bus(self) -> SnapshotBus:
        """The snapshots followed from the server, the newest one current."""
        return self._bus

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "http" and self.gateway.handles(scope["path"]):
            await self.gateway(scope, receive, send)
            return
        if scope["type"] == "http":
            ready = scope["path"] in ("/healthz", "/readyz") and self._bus.current.version > 0
            status, body = (200, b'{"status":"ok"}') if ready else (404, NOT_HERE)
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()
        tasks = [
            asyncio.create_task(self._subscriber.run()),
            asyncio.create_task(self._ship_usage()),
            asyncio.create_task(self._load.run()),
        ]
        freeze_startup_heap()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._post_usage()
        await self.gateway.close()
        await send({"type": "lifespan.shutdown.complete"})

    async def _ship_usage(self) -> None:
        while True:
            await asyncio.sleep(USAGE_EVERY_S)
            await self._post_usage()

    async def _post_usage(self) -> None:
        sums = self.gateway.recorder.usage.drain()
        if not sums:
            return
        rows = [{**asdict(key), **asdict(value)} for key, value in sums.items()]
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                answer = await http.post(
                    f"{self._control}/api/2.0/berth/data-plane/usage",
                    json={"usage": rows},
                    headers={"Authorization": f"Bearer {self._token}"},
                )
                answer.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("could not ship usage of %d keys to the server: %s", len(rows), exc)


def run_gateway(control_url: str, token: str, settings: Settings, host: str, port: int) -> None:
    """Inference tables go to this machine's ``$BERTH_HOME/inference``, as the server's do."""
    config = uvicorn.Config(
        GatewayProcess(control_url, token, settings),
        host=host,
        port=port,
        log_level="info",
        log_config=log_config(settings.log_format),
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()
