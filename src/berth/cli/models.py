"""`berth models ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Manage models.", no_args_is_help=True)
