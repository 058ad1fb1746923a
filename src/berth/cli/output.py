"""Talking to the user: the SDK client, readable tables by default, JSON with ``--output json``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from berth.client import ApiError, BerthClient

# Piped output keeps each table at its natural width, so no name is cut for grep or a file.
PIPE_WIDTH = 1000


def _stdout_console() -> Console:
    found = Console()
    return found if found.is_terminal else Console(width=PIPE_WIDTH)


console = _stdout_console()
# Messages are never hard-wrapped: a wrapped path or name cannot be pasted back.
err_console = Console(stderr=True, soft_wrap=True)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


OutputOption = typer.Option(OutputFormat.table, "--output", "-o", help="table or json.")


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data))


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    # At least as wide as the title, so a narrow table does not wrap it.
    table = Table(title=title, title_justify="left", header_style="bold", min_width=cell_len(title))
    for column in columns:
        # Fold rather than truncate: a cut name cannot be copied into the next command.
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(cell) for cell in row))
    console.print(table)


def print_fields(fields: Sequence[tuple[str, Any]]) -> None:
    """A block of ``label  value`` lines and a blank one: the header of one resource."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, value in fields:
        grid.add_row(label, _cell(value))
    console.print(grid)
    console.line()


def _cell(value: Any) -> Text:
    # Text, not markup: values come from users and servers and may hold "[...]".
    return Text("" if value is None else str(value))


def when(epoch_ms: int | None) -> str:
    """Epoch milliseconds as a short UTC time."""
    if not epoch_ms:
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def short_count(count: int) -> str:
    """A count the way model sizes are said: 134,515,008 → 135M, 8,030,261,248 → 8.0B."""
    for scale, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if count >= scale:
            value = count / scale
            return f"{value:.1f}{suffix}" if value < 10 else f"{value:.0f}{suffix}"
    return str(count)


def short_bytes(size: int) -> str:
    """A size in decimal units, as package indexes and model hubs give them: 98.4 MB."""
    for scale, unit in ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "kB")):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def fail(error: ApiError) -> typer.Exit:
    """Print an API error the way a person reads it and return the exit to raise."""
    err_console.print(
        f"[red]Error[/red] {escape(error.error_code)} ({error.status}): {escape(error.message)}"
    )
    return typer.Exit(code=1)


def fail_input(message: str) -> typer.Exit:
    """Print what is wrong with the user's input (a file, an argument) and return exit 2."""
    err_console.print(f"[red]Error[/red] {escape(message)}")
    return typer.Exit(code=2)


@contextmanager
def api_client() -> Iterator[BerthClient]:
    """An SDK client on BERTH_HOST/BERTH_TOKEN; API errors end the command with exit 1."""
    try:
        with BerthClient() as client:
            yield client
    except ApiError as exc:
        raise fail(exc) from exc
