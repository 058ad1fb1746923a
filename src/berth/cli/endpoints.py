"""`berth endpoints ...`: serving endpoints from the command line, through the SDK only."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from berth.cli.output import (
    OutputFormat,
    OutputOption,
    fail,
    fail_input,
    print_fields,
    print_json,
    print_table,
    when,
)
from berth.client import ApiError, BerthClient
from berth.core.states import ConfigUpdate

app = typer.Typer(help="Manage serving endpoints.", no_args_is_help=True)

Json = dict[str, Any]

SpecFile = Annotated[
    Path,
    typer.Option("--file", "-f", metavar="FILE", help="JSON or YAML file (.json is read as JSON)."),
]
Name = Annotated[str, typer.Argument(metavar="NAME", help="Endpoint name.")]

ENTITY_COLUMNS = ["name", "entity", "version", "workload", "scale to zero", "deployment", "message"]


@contextmanager
def _client() -> Iterator[BerthClient]:
    """An SDK client on BERTH_HOST/BERTH_TOKEN; API errors end the command with exit 1."""
    try:
        with BerthClient() as client:
            yield client
    except ApiError as exc:
        raise fail(exc) from exc


@app.command()
def create(file: SpecFile, output: OutputFormat = OutputOption) -> None:
    """Create an endpoint from a Databricks create payload: {name, config, tags?, ...}."""
    spec = load_spec(file)
    with _client() as client:
        endpoint = client.endpoints.create(spec)
    _show_endpoint(endpoint, output)


@app.command()
def get(name: Name, output: OutputFormat = OutputOption) -> None:
    """Show one endpoint: state, served entities and traffic."""
    with _client() as client:
        endpoint = client.endpoints.get(name)
    _show_endpoint(endpoint, output)


@app.command("list")
def list_endpoints(output: OutputFormat = OutputOption) -> None:
    """List endpoints."""
    with _client() as client:
        endpoints = client.endpoints.list()
    if output is OutputFormat.json:
        print_json(endpoints)
    else:
        render_list(endpoints)


@app.command()
def update_config(name: Name, file: SpecFile, output: OutputFormat = OutputOption) -> None:
    """Start a config update from a file holding the new config (or a create payload)."""
    config = config_of(load_spec(file))
    with _client() as client:
        endpoint = client.endpoints.update_config(name, config)
    _show_endpoint(endpoint, output)


@app.command()
def delete(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an endpoint and stop its replicas."""
    if not yes:
        typer.confirm(f"Delete endpoint {name}?", abort=True)
    with _client() as client:
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
    with _client() as client:
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
    with _client() as client:
        found = client.endpoints.events(name)
    if output is OutputFormat.json:
        print_json(found)
    else:
        render_events(name, found)


def load_spec(path: Path) -> Json:
    """A JSON object from a .json file, or from YAML (which JSON also is) for any other name."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise fail_input(f"cannot read {path}: {reason}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise fail_input(f"cannot parse {path}{_where(exc)}") from exc
    if not isinstance(data, dict):
        raise fail_input(f"{path} must hold a mapping (JSON object), not {type(data).__name__}")
    try:
        json.dumps(data)
    except TypeError as exc:
        raise fail_input(f"{path} holds a value JSON cannot carry ({exc}); quote it") from exc
    return data


def _where(exc: ValueError | yaml.YAMLError) -> str:
    """`` (line L, column C): what the parser expected``, for JSON and YAML alike."""
    if isinstance(exc, json.JSONDecodeError):
        return f" (line {exc.lineno}, column {exc.colno}): {exc.msg}"
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f" (line {mark.line + 1}, column {mark.column + 1}): {exc.problem}"
    return f": {exc}"


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


def _show_endpoint(endpoint: Json, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json(endpoint)
    else:
        render_endpoint(endpoint)


def render_list(endpoints: Sequence[Json]) -> None:
    rows = [
        (
            endpoint.get("name"),
            _state_text(endpoint.get("state") or {}),
            "\n".join(_entity_summary(e) for e in _entities(_config(endpoint))),
            "\n".join(f"{target} {share}" for target, share in _traffic(_config(endpoint))),
            endpoint.get("creator"),
            when(endpoint.get("creation_timestamp")),
        )
        for endpoint in endpoints
    ]
    columns = ["name", "state", "served entities", "traffic", "creator", "created"]
    print_table("Endpoints", columns, rows)


def render_endpoint(endpoint: Json) -> None:
    """A header block, then served entities and traffic of the live and the pending config."""
    config = endpoint.get("config") or {}
    pending = endpoint.get("pending_config") or {}
    fields: list[tuple[str, Any]] = [
        ("Name", endpoint.get("name")),
        ("ID", endpoint.get("id")),
        ("State", _state_text(endpoint.get("state") or {})),
        ("Config version", config.get("config_version", "none yet")),
    ]
    if pending:
        fields.append(("Pending version", pending.get("config_version")))
    fields += [
        ("Tags", ", ".join(f"{t['key']}={t.get('value', '')}" for t in endpoint.get("tags") or [])),
        ("Creator", endpoint.get("creator")),
        ("Created", when(endpoint.get("creation_timestamp"))),
    ]
    print_fields(fields)
    if config:
        _render_config("config", config)
    if pending:
        _render_config("pending config", pending)


def _render_config(label: str, config: Json) -> None:
    which = f"{label} v{config.get('config_version')}"
    rows = [_entity_row(e) for e in _entities(config)]
    print_table(f"Served entities ({which})", ENTITY_COLUMNS, rows)
    print_table(f"Traffic ({which})", ["served entity", "traffic"], _traffic(config))


def render_events(name: str, found: Sequence[Json]) -> None:
    rows = [(when(e.get("timestamp")), e.get("type"), e.get("message")) for e in found]
    print_table(f"Events of {name}", ["time", "type", "message"], rows)


def _state_text(state: Json) -> str:
    """``READY``, or ``NOT_READY (IN_PROGRESS)`` while a config update is not settled."""
    ready = str(state.get("ready", "NOT_READY"))
    update = state.get("config_update", ConfigUpdate.NOT_UPDATING)
    return ready if update == ConfigUpdate.NOT_UPDATING else f"{ready} ({update})"


def _entity_summary(entity: Json) -> str:
    """``name (entity_name v3, Small)``, or ``name (openai gpt-4o)`` for an external model."""
    source, version = _source(entity)
    details = [source if entity.get("external_model") else f"{source} v{version}"]
    if entity.get("workload_size"):
        details.append(str(entity["workload_size"]))
    return f"{entity.get('name')} ({', '.join(details)})"


def _entity_row(entity: Json) -> tuple[Any, ...]:
    source, version = _source(entity)
    state = entity.get("state") or {}
    return (
        entity.get("name"),
        source,
        version,
        _workload(entity),
        "" if entity.get("external_model") else _yes_no(entity.get("scale_to_zero_enabled")),
        str(state.get("deployment", "")).removeprefix("DEPLOYMENT_"),
        state.get("deployment_state_message"),
    )


def _config(endpoint: Json) -> Json:
    """The config a list row describes: the live one, or the first one still pending."""
    config: Json = endpoint.get("config") or endpoint.get("pending_config") or {}
    return config


def _source(entity: Json) -> tuple[str, str]:
    """What an entity serves and which version: a registered model's, or an external model."""
    external = entity.get("external_model")
    if external:
        return f"{external.get('provider')} {external.get('name')}", "external"
    return str(entity.get("entity_name")), str(entity.get("entity_version"))


def _yes_no(flag: object) -> str:
    return "yes" if flag else "no"


def _workload(entity: Json) -> str:
    low = entity.get("min_provisioned_concurrency")
    high = entity.get("max_provisioned_concurrency")
    if low is not None or high is not None:
        sizing = f"concurrency {low}-{high}"
    else:
        sizing = str(entity.get("workload_size") or "")
    return " ".join(part for part in (sizing, entity.get("workload_type")) if part)


def _entities(config: Json) -> list[Json]:
    entities: list[Json] = config.get("served_entities") or []
    return entities


def _traffic(config: Json) -> list[tuple[Any, str]]:
    """(served entity, ``N%``) per route."""
    routes: list[Json] = (config.get("traffic_config") or {}).get("routes") or []
    return [
        (
            r.get("served_entity_name") or r.get("served_model_name"),
            f"{r.get('traffic_percentage', 0)}%",
        )
        for r in routes
    ]
