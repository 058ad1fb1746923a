"""`berth endpoints ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Manage endpoints.", no_args_is_help=True)
