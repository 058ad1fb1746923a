"""``berth usage`` and ``berth audit``: who used what, and who changed what."""

from __future__ import annotations

import re
import time
from typing import Annotated

import typer

from berth.cli.output import OutputFormat, OutputOption, api_client, print_json, print_table, when

_AGO = re.compile(r"^(\d+)([mhd])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


def since_ms(text: str) -> int:
    """``30m``, ``12h`` or ``7d`` ago, as epoch milliseconds."""
    found = _AGO.match(text.strip())
    if found is None:
        raise typer.BadParameter(f"'{text}' is not a span like 30m, 12h or 7d.")
    return time.time_ns() // 1_000_000 - int(found.group(1)) * _UNIT_MS[found.group(2)]


SinceOption = Annotated[str, typer.Option("--since", help="How far back: 30m, 12h, 7d.")]


def usage(
    by: Annotated[
        str, typer.Option(help="Group by any of endpoint, principal, day (comma-separated).")
    ] = "endpoint,principal,day",
    since: SinceOption = "7d",
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint.")] = None,
    output: OutputFormat = OutputOption,
) -> None:
    """Requests, errors, tokens and latency of tracked endpoints (AI gateway
    usage_tracking_config): yours, those of endpoints you manage, or all for admins."""
    grouping = tuple(part.strip() for part in by.split(",") if part.strip())
    with api_client() as client:
        rows = client.governance.usage(grouping, since_ms=since_ms(since), endpoint=endpoint)
    if output is OutputFormat.json:
        print_json(rows)
        return
    columns = [*grouping, "requests", "errors", "tokens in", "tokens out", "mean ms"]
    print_table(
        "Usage",
        columns,
        [
            (
                *(row[column] for column in grouping),
                row["requests"],
                row["errors"],
                row["input_tokens"],
                row["output_tokens"],
                f"{row['mean_latency_ms']:.1f}",
            )
            for row in rows
        ],
    )


def audit(
    since: SinceOption = "7d",
    object_type: Annotated[
        str | None,
        typer.Option(
            "--type", help="serving-endpoint, registered-model, secret-scope, user, group, token."
        ),
    ] = None,
    object_id: Annotated[str | None, typer.Option("--id", help="One object's name or id.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this principal's changes.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries.")] = 50,
    output: OutputFormat = OutputOption,
) -> None:
    """Control-plane changes, newest first (admins only)."""
    with api_client() as client:
        rows = client.governance.audit(
            since_ms(since), object_type=object_type, object_id=object_id, actor=actor, limit=limit
        )
    if output is OutputFormat.json:
        print_json(rows)
        return
    print_table(
        "Audit log",
        ["when", "actor", "action", "object"],
        [(when(row["timestamp"]), row["actor"], row["action"], row["object_id"]) for row in rows],
    )


def payloads(
    name: Annotated[str, typer.Argument(help="The endpoint.")],
    since: SinceOption = "1d",
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 20,
    output: OutputFormat = OutputOption,
) -> None:
    """Captured requests and responses of an endpoint with an inference table, newest first."""
    with api_client() as client:
        rows = client.governance.payloads(name, since_ms=since_ms(since), limit=limit)
    if output is OutputFormat.json:
        print_json(rows)
        return
    print_table(
        f"Payloads of {name}",
        ["when", "request id", "principal", "status", "ms", "request", "response"],
        [
            (
                when(row["timestamp_ms"]),
                row["request_id"],
                row["principal"],
                row["status_code"],
                f"{row['latency_ms']:.1f}",
                _short(row["request"]),
                _short(row["response"] or row["error"] or ""),
            )
            for row in rows
        ],
    )


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
