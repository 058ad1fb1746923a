"""`berth endpoints ...`: serving endpoints from the command line, through the SDK only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from berth.cli.endpoint_tables import (
    render_endpoint,
    render_events,
    render_history,
    render_list,
)
from berth.cli.files import load_spec
from berth.cli.output import (
    OutputFormat,
    OutputOption,
    api_client,
    console,
    err_console,
    fail_input,
    print_json,
    print_table,
)
from berth.cli.progress import wait_for
from berth.client import BerthClient

app = typer.Typer(help="Manage serving endpoints.", no_args_is_help=True)

Json = dict[str, Any]

SpecFile = Annotated[
    Path,
    typer.Option("--file", "-f", metavar="FILE", help="JSON or YAML file (.json is read as JSON)."),
]
Name = Annotated[str, typer.Argument(metavar="NAME", help="Endpoint name.")]
Wait = Annotated[
    bool,
    typer.Option("--wait", help="Show progress until the endpoint is ready or the update ends."),
]
Timeout = Annotated[float, typer.Option(help="Seconds --wait waits at most.")]


@app.command()
def create(
    file: SpecFile, wait: Wait = False, timeout: Timeout = 1200, output: OutputFormat = OutputOption
) -> None:
    """Create an endpoint from a Databricks create payload: {name, config, tags?, ...}."""
    spec = load_spec(file)
    with api_client() as client:
        endpoint = client.endpoints.create(spec)
        if wait:
            endpoint = _wait(client, endpoint["name"], timeout)
    _show_endpoint(endpoint, output)
    _exit_if_failed(endpoint)


@app.command()
def get(name: Name, output: OutputFormat = OutputOption) -> None:
    """Show one endpoint: state, served entities and traffic."""
    with api_client() as client:
        endpoint = client.endpoints.get(name)
    _show_endpoint(endpoint, output)


@app.command("list")
def list_endpoints(
    state: Annotated[
        list[str] | None,
        typer.Option(
            help="Only endpoints in this state (READY, NOT_READY, IN_PROGRESS, ...); repeatable."
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            help="Only endpoints with this tag, KEY or KEY=VALUE; repeatable, all must match."
        ),
    ] = None,
    output: OutputFormat = OutputOption,
) -> None:
    """List endpoints, optionally only those in some states and with some tags."""
    with api_client() as client:
        endpoints = client.endpoints.list(state or (), tag or ())
    if output is OutputFormat.json:
        print_json(endpoints)
    else:
        render_list(endpoints)


@app.command()
def update_config(
    name: Name,
    file: SpecFile,
    wait: Wait = False,
    timeout: Timeout = 1200,
    output: OutputFormat = OutputOption,
) -> None:
    """Start a config update from a file holding the new config (or a create payload)."""
    config = config_of(load_spec(file))
    with api_client() as client:
        endpoint = client.endpoints.update_config(name, config)
        if wait:
            endpoint = _wait(client, name, timeout)
    _show_endpoint(endpoint, output)
    _exit_if_failed(endpoint)


@app.command()
def cancel_update(name: Name, output: OutputFormat = OutputOption) -> None:
    """Abandon the config update in progress; the current config keeps serving."""
    with api_client() as client:
        endpoint = client.endpoints.cancel_update(name)
    _show_endpoint(endpoint, output)


@app.command()
def query(
    name: Name,
    body: Annotated[
        str | None, typer.Option("--json", "-j", help="The request body, as JSON.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A JSON or YAML file with the body.")
    ] = None,
) -> None:
    """Score a request: any MLflow scoring format ({"instances": ...}, {"dataframe_split": ...})."""
    if (body is None) == (file is None):
        raise typer.BadParameter("give the request body with exactly one of --json or --file")
    try:
        payload = json.loads(body) if body is not None else load_spec(file)  # type: ignore[arg-type]
    except json.JSONDecodeError as exc:
        raise fail_input(f"--json is not valid JSON: {exc}") from exc
    with api_client() as client:
        print_json(client.endpoints.query(name, payload))


@app.command()
def logs(
    name: Name,
    served_entity: Annotated[str, typer.Argument(help="Served entity (served model) name.")],
) -> None:
    """Print the tail of what the served entity's replicas wrote."""
    with api_client() as client:
        text = client.endpoints.logs(name, served_entity)
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command()
def delete(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an endpoint and stop its replicas."""
    if not yes:
        typer.confirm(f"Delete endpoint {name}?", abort=True)
    with api_client() as client:
        client.endpoints.delete(name)
    typer.echo(f"Deleted endpoint {name}.")


@app.command()
def tags(
    name: Name,
    add: Annotated[
        list[str] | None,
        typer.Option("--add", metavar="KEY=VALUE", help="Tag to set (repeatable)."),
    ] = None,
    remove: Annotated[
        list[str] | None,
        typer.Option("--remove", metavar="KEY", help="Tag key to remove (repeatable)."),
    ] = None,
    output: OutputFormat = OutputOption,
) -> None:
    """Add and remove tags; shows the resulting tags (with no option, just shows them)."""
    pairs = _parse_tags(add or [])
    with api_client() as client:
        if pairs or remove:
            result = client.endpoints.patch_tags(name, add=pairs, delete=remove)
        else:
            result = client.endpoints.get(name).get("tags") or []
    if output is OutputFormat.json:
        print_json(result)
    else:
        print_table(
            f"Tags of {name}", ["key", "value"], [(t["key"], t.get("value")) for t in result]
        )


@app.command()
def events(name: Name, output: OutputFormat = OutputOption) -> None:
    """Show what happened to an endpoint: config updates, deployments, failures."""
    with api_client() as client:
        found = client.endpoints.events(name)
    if output is OutputFormat.json:
        print_json(found)
    else:
        render_events(name, found)


@app.command()
def metrics(
    name: Name,
    minutes: Annotated[int, typer.Option(help="How many minutes, the current one last.")] = 10,
    entity: Annotated[
        str | None, typer.Option("--entity", help="One served entity rather than the total.")
    ] = None,
    output: OutputFormat = OutputOption,
) -> None:
    """Show requests/s, errors/s, p50/p99 latency, tokens/s and replicas, one row a minute."""
    with api_client() as client:
        found = client.endpoints.metrics_history(name, minutes)
    if output is OutputFormat.json:
        print_json(found)
    elif entity is not None and entity not in found["series"]:
        known = ", ".join(found["series"]) or "none"
        raise fail_input(f"Endpoint {name} has no served entity '{entity}': {known}.")
    else:
        render_history(name, found, entity)


def config_of(spec: Json) -> Json:
    """An EndpointCoreConfigInput as given, or the ``config`` of a whole create payload."""
    config = spec.get("config")
    return config if isinstance(config, dict) else spec


def _parse_tags(pairs: Sequence[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--add")
        parsed[key] = value
    return parsed


def _wait(client: BerthClient, name: str, timeout: float) -> Json:
    try:
        return wait_for(client, name, timeout)
    except TimeoutError as exc:
        raise fail_input(
            f"endpoint {name} did not settle within {timeout:.0f}s; it goes on in the "
            f"background (berth endpoints get {name})"
        ) from exc


def _exit_if_failed(endpoint: Json) -> None:
    """Exit 1 when the update the command waited for ended without success."""
    outcome = endpoint.get("state", {}).get("config_update")
    if outcome in ("UPDATE_FAILED", "UPDATE_CANCELED"):
        err_console.print(f"[red]{endpoint['name']}: {outcome}[/red]")
        raise typer.Exit(1)


def _show_endpoint(endpoint: Json, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json(endpoint)
    else:
        render_endpoint(endpoint)
