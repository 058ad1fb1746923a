"""``berth envs ...``: the cache of model environments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import typer

from berth.cli.output import OutputFormat, OutputOption, api_client, print_json, print_table, when

app = typer.Typer(help="Model environments built by uv, cached by content.", no_args_is_help=True)

COLUMNS = ["hash", "python", "requirements", "size", "last used", "model versions", "in use"]


@app.command("list")
def list_envs(output: OutputFormat = OutputOption) -> None:
    """List built environments: size on disk, last use, which model versions use each."""
    with api_client() as client:
        found = client.envs.list()
    if output is OutputFormat.json:
        print_json(found)
    else:
        _table("Environments", found)


@app.command()
def prune(output: OutputFormat = OutputOption) -> None:
    """Remove every environment that no endpoint serves from."""
    with api_client() as client:
        removed = client.envs.prune()
    if output is OutputFormat.json:
        print_json(removed)
    elif removed:
        _table("Removed", removed)
    else:
        typer.echo("Nothing to prune: every environment is in use.")


def _table(title: str, envs: Sequence[dict[str, Any]]) -> None:
    print_table(
        title,
        COLUMNS,
        [
            (
                env["hash"][:12],
                env["python_version"],
                ", ".join(env["requirements"]),
                f"{env['size_bytes'] / 1e6:.1f} MB",
                when(env["last_used_timestamp"]),
                ", ".join(env["model_versions"]),
                "yes" if env["in_use"] else "no",
            )
            for env in envs
        ],
    )
