"""Runs ``berth serve`` under uvicorn until SIGTERM or SIGINT: one process, or a control
process with gateway workers in front (``--gateway-workers N``)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from rich.console import Console

from berth.server.app import Server, build_server
from berth.server.logs import log_config
from berth.server.private_redis import PrivateRedis
from berth.server.worker import bound_socket
from berth.server.workers import WorkerPool
from berth.settings import Settings

console = Console(stderr=True)
log = logging.getLogger(__name__)

OnStarted = Callable[[str, str | None], None]


def serve(settings: Settings, on_started: OnStarted | None = None) -> None:
    """Serve until a signal asks us to stop; ``on_started(base_url, admin_token)`` runs once up.

    uvicorn owns SIGTERM/SIGINT: it stops accepting, finishes in-flight requests, runs the
    lifespan shutdown and returns, and we then close the store.
    """
    if settings.server.gateway_workers:
        _serve_with_workers(settings, on_started)
        return
    server = build_server(settings)
    _announce(server)
    uv_server = uvicorn.Server(_config(settings, server))
    if on_started is not None:
        base_url = f"http://{settings.server.host}:{settings.server.port}"
        _after_start(lambda: uv_server.started, uv_server, on_started, base_url, settings, server)
    try:
        uv_server.run()
    finally:
        server.services.db.dispose()


def _serve_with_workers(settings: Settings, on_started: OnStarted | None) -> None:
    """The control process on an internal loopback port; the workers on the public one.

    The public port is bound here first (``SO_REUSEPORT``, never listening): a port in use
    fails now, port 0 is resolved, and the port stays ours while workers restart. Raises
    `RedisUnavailable` when several workers need a Redis and none can be had.
    """
    count = settings.server.gateway_workers
    redis = None
    if count > 1 and not settings.redis_url:
        redis = PrivateRedis(settings.home_dir / "run").start()
        settings = settings.model_copy(update={"redis_url": redis.url})
    try:
        public = _reserve(settings.server.host, settings.server.port)
        port = public.getsockname()[1]
        control = socket.socket()
        control.bind(("127.0.0.1", 0))
        control_url = f"http://127.0.0.1:{control.getsockname()[1]}"
        pool = WorkerPool(settings, count, port)
        server = build_server(settings, pool)
        _announce(server)
        token = _admin_token(settings, server.admin.token)
        assert token is not None, "build_server made or found the admin token"
        uv_server = _Supervising(
            _config(settings, server), pool, control_url, token, redis.stop if redis else None
        )
        base_url = f"http://{settings.server.host}:{port}"
        log.info("serving %s with %d gateway workers; control on %s", base_url, count, control_url)
        if on_started is not None:

            def ready() -> bool:
                return uv_server.started and pool.serving > 0

            _after_start(ready, uv_server, on_started, base_url, settings, server)
        try:
            uv_server.run(sockets=[control])
        finally:
            server.services.db.dispose()
            public.close()
    finally:
        if redis is not None:
            redis.stop()


def _reserve(host: str, port: int) -> socket.socket:
    """The public port, held for the workers. Bound once without ``SO_REUSEPORT`` first, so a
    port another server listens on is refused (as uvicorn would), even one that also set it."""
    try:
        with bound_socket(host, port, reuse_port=False) as probe:
            port = probe.getsockname()[1]
        return bound_socket(host, port)
    except OSError as exc:
        log.error("cannot bind %s:%d: %s", host, port, exc)
        raise SystemExit(1) from exc


class _Supervising(uvicorn.Server):
    """uvicorn for the control process: workers start once it serves and stop before it
    does (they still send it their last usage), then the private Redis stops."""

    def __init__(
        self,
        config: uvicorn.Config,
        pool: WorkerPool,
        control_url: str,
        token: str,
        after: Callable[[], None] | None,
    ) -> None:
        super().__init__(config)
        self._pool = pool
        self._control_url = control_url
        self._token = token
        self._after = after

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self._pool.start(self._control_url, self._token)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn re-raises the stopping signal once it returns, which ends this process
        # before any ``finally`` of ours: what must stop stops here.
        await self._pool.stop()
        await super().shutdown(sockets)
        if self._after is not None:
            self._after()


def _config(settings: Settings, server: Server) -> uvicorn.Config:
    return uvicorn.Config(
        server.app,
        host=settings.server.host,
        port=settings.server.port,
        log_level="info",
        log_config=log_config(settings.log_format),
        access_log=False,
        lifespan="on",
    )


def _announce(server: Server) -> None:
    if server.admin.created:
        console.print(
            "[bold]Admin token[/bold] (shown once; also in "
            f"{server.admin.token_file}, mode 0600):\n  {server.admin.token}"
        )


def _admin_token(settings: Settings, generated: str | None) -> str | None:
    if generated:
        return generated
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    path = settings.admin_token_file
    return path.read_text().strip() if path.exists() else None


def _after_start(
    ready: Callable[[], bool],
    uv_server: uvicorn.Server,
    on_started: OnStarted,
    base_url: str,
    settings: Settings,
    server: Server,
) -> None:
    token = _admin_token(settings, server.admin.token)
    threading.Thread(
        target=_when_ready,
        args=(ready, uv_server, on_started, base_url, token),
        daemon=True,
        name="berth-after-start",
    ).start()


def _when_ready(
    ready: Callable[[], bool],
    uv_server: uvicorn.Server,
    on_started: OnStarted,
    base_url: str,
    token: str | None,
) -> None:
    while not ready():
        if uv_server.should_exit:
            return
        time.sleep(0.05)
    try:
        on_started(base_url, token)
    except Exception as exc:  # a failed demo must not take the server down
        console.print(f"[red]Start-up hook failed:[/red] {exc}")
