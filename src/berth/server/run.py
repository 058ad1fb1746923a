"""Runs one ``berth serve`` process under uvicorn until SIGTERM or SIGINT."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import uvicorn
from rich.console import Console

from berth.server.app import build_server
from berth.server.logs import log_config
from berth.settings import Settings

console = Console(stderr=True)


def serve(settings: Settings, on_started: Callable[[str, str | None], None] | None = None) -> None:
    """Serve until a signal asks us to stop; ``on_started(base_url, admin_token)`` runs once up.

    uvicorn owns SIGTERM/SIGINT: it stops accepting, finishes in-flight requests, runs the
    lifespan shutdown and returns, and we then close the store.
    """
    server = build_server(settings)
    if server.admin.created:
        console.print(
            "[bold]Admin token[/bold] (shown once; also in "
            f"{server.admin.token_file}, mode 0600):\n  {server.admin.token}"
        )
    config = uvicorn.Config(
        server.app,
        host=settings.server.host,
        port=settings.server.port,
        log_level="info",
        log_config=log_config(settings.log_format),
        access_log=False,
        lifespan="on",
    )
    uv_server = uvicorn.Server(config)
    if on_started is not None:
        base_url = f"http://{settings.server.host}:{settings.server.port}"
        threading.Thread(
            target=_after_start,
            args=(uv_server, on_started, base_url, _admin_token(settings, server.admin.token)),
            daemon=True,
            name="berth-after-start",
        ).start()
    try:
        uv_server.run()
    finally:
        server.services.db.dispose()


def _admin_token(settings: Settings, generated: str | None) -> str | None:
    if generated:
        return generated
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    path = settings.admin_token_file
    return path.read_text().strip() if path.exists() else None


def _after_start(
    uv_server: uvicorn.Server,
    on_started: Callable[[str, str | None], None],
    base_url: str,
    token: str | None,
) -> None:
    while not uv_server.started:
        if uv_server.should_exit:
            return
        time.sleep(0.05)
    try:
        on_started(base_url, token)
    except Exception as exc:  # a failed demo must not take the server down
        console.print(f"[red]Start-up hook failed:[/red] {exc}")
