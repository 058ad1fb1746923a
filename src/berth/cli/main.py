"""``berth``: the command-line entry point."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from berth.cli import demo, endpoints, envs, governance, groups, models, secrets, tokens, users

app = typer.Typer(
    help="berth: self-hosted model serving.", no_args_is_help=True, pretty_exceptions_enable=False
)
app.add_typer(models.app, name="models")
app.add_typer(endpoints.app, name="endpoints")
app.add_typer(envs.app, name="envs")
app.add_typer(secrets.app, name="secrets")
app.add_typer(users.app, name="users")
app.add_typer(groups.app, name="groups")
app.add_typer(tokens.app, name="tokens")
app.command("usage")(governance.usage)
app.command("audit")(governance.audit)
app.command("payloads")(governance.payloads)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8000).")] = None,
    home: Annotated[Path | None, typer.Option(help="Data directory (default ~/.berth).")] = None,
    demo_mode: Annotated[
        bool,
        typer.Option("--demo", help="Also deploy the bundled example model as endpoint iris-demo."),
    ] = False,
    gateway_workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=64,
            help="Answer queries in N data-plane processes sharing the port (default 0: one "
            "process serves all). N > 1 shares rate limits through BERTH_REDIS_URL, or a "
            "private redis-server when that is unset.",
        ),
    ] = None,
) -> None:
    """Run the berth server: API, gateway and controller in one process, or the gateway in
    worker processes with --gateway-workers."""
    from berth.server.private_redis import RedisUnavailable
    from berth.server.run import serve as run_server
    from berth.settings import Settings

    overrides: dict[str, object] = {}
    if home is not None:
        overrides["home"] = home
    settings = Settings(**overrides)  # type: ignore[arg-type]
    given = {"host": host, "port": port, "gateway_workers": gateway_workers}
    server = settings.server.model_copy(update={k: v for k, v in given.items() if v is not None})
    settings = settings.model_copy(update={"server": server})
    on_started = partial(demo.install, token_file=settings.admin_token_file) if demo_mode else None
    try:
        run_server(settings, on_started=on_started)
    except RedisUnavailable as exc:
        raise typer.BadParameter(str(exc), param_hint="--gateway-workers") from exc


@app.command("gateway")
def gateway_process(
    control_url: Annotated[
        str | None,
        typer.Option(help="The berth server to follow (default BERTH_HOST or 127.0.0.1:8000)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8001,
) -> None:
    """Run a data-plane-only gateway process that follows a berth server; rate limits are
    shared through BERTH_REDIS_URL. Needs an admin token (BERTH_TOKEN, or the server's
    $BERTH_HOME/admin-token on this machine)."""
    from berth.client.transport import resolve_host, resolve_token
    from berth.server.gateway_process import run_gateway
    from berth.settings import Settings

    settings = Settings()
    token = resolve_token(None)
    if token is None and settings.admin_token_file.exists():
        token = settings.admin_token_file.read_text().strip()
    if not token:
        raise typer.BadParameter("Set BERTH_TOKEN to an admin token.", param_hint="BERTH_TOKEN")
    run_gateway(resolve_host(control_url), token, settings, host, port)


def main() -> None:
    app()
