"""Endpoints as people read them: the list, one endpoint's detail, its events, its metrics
history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from berth.cli.output import print_fields, print_table, when
from berth.core.states import ConfigUpdate

Json = dict[str, Any]

ENTITY_COLUMNS = [
    "name",
    "entity",
    "version",
    "workload",
    "scale to zero",
    "replicas",
    "deployment",
    "message",
]
THROUGHPUT_COLUMNS = ["served entity", "band now", "band", "chunk (measured)", "calibrated", "host"]
HISTORY_COLUMNS = [
    "minute (UTC)",
    "req/s",
    "err/s",
    "p50 ms",
    "p99 ms",
    "tokens/s in/out",
    "replicas",
]


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
    provisioned = [_throughput_row(e) for e in _entities(config) if "provisioned_throughput" in e]
    if provisioned:
        print_table(f"Provisioned throughput ({which})", THROUGHPUT_COLUMNS, provisioned)
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
        _replicas(entity),
        str(state.get("deployment", "")).removeprefix("DEPLOYMENT_"),
        state.get("deployment_state_message"),
    )


def _throughput_row(entity: Json) -> tuple[Any, ...]:
    """The band an open LLM entity asks for, what its ready replicas provide now, and the
    chunk (one replica's tokens/s) it is counted in, as measured on the server's host."""
    band = entity["provisioned_throughput"]
    now = band.get("current_band")
    return (
        entity.get("name"),
        "" if now is None else f"{now} tokens/s",
        f"{band['min_throughput']}-{band['max_throughput']} tokens/s",
        f"{band['chunk_size']} tokens/s per replica",
        when(band.get("calibrated_at")),
        band.get("fingerprint"),
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


def _replicas(entity: Json) -> str:
    """``ready/wanted`` (``1/3`` while the autoscaler adds two), empty when not reported."""
    if "current_replicas" not in entity:
        return ""
    return f"{entity['current_replicas']}/{entity.get('desired_replicas', '?')}"


def _yes_no(flag: object) -> str:
    return "yes" if flag else "no"


def _workload(entity: Json) -> str:
    low = entity.get("min_provisioned_concurrency")
    high = entity.get("max_provisioned_concurrency")
    units = entity.get("provisioned_model_units")
    if units is not None:
        sizing = f"{units} model unit{'' if units == 1 else 's'}"
    elif entity.get("max_provisioned_throughput") is not None:
        sizing = (
            f"throughput {entity.get('min_provisioned_throughput')}-"
            f"{entity['max_provisioned_throughput']} tokens/s"
        )
    elif low is not None or high is not None:
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


def render_history(name: str, history: Json, entity: str | None) -> None:
    """One row a minute of the metrics history: ``entity``'s series, else the total."""
    series: Json = history["total"] if entity is None else history["series"][entity]
    rows = [
        (
            datetime.fromtimestamp(minute / 1000, UTC).strftime("%H:%M"),
            _figure(series["requests_per_s"][i]),
            _figure(series["errors_per_s"][i]),
            _figure(series["p50_ms"][i]),
            _figure(series["p99_ms"][i]),
            f"{_figure(series['input_tokens_per_s'][i])}/{_figure(series['output_tokens_per_s'][i])}",
            _replicas_at(series, i),
        )
        for i, minute in enumerate(history["minutes"])
    ]
    print_table(f"{name}: {entity or 'all served entities'}, per minute", HISTORY_COLUMNS, rows)


def _figure(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


def _replicas_at(series: Json, index: int) -> str:
    current = series["replicas_current"][index]
    if current is None:
        return "-"
    return f"{current}/{series['replicas_desired'][index]}"
