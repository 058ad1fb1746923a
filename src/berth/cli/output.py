"""Printing results: readable tables by default, JSON with ``--output json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from berth.client import ApiError

console = Console()
err_console = Console(stderr=True)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


OutputOption = typer.Option(OutputFormat.table, "--output", "-o", help="table or json.")


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data))


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


def when(epoch_ms: int | None) -> str:
    """Epoch milliseconds as a short UTC time."""
    if not epoch_ms:
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fail(error: ApiError) -> typer.Exit:
    """Print an API error the way a person reads it and return the exit to raise."""
    err_console.print(f"[red]Error[/red] {error.error_code} ({error.status}): {error.message}")
    return typer.Exit(code=1)
