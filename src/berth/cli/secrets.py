"""``berth secrets ...``: secret scopes and the secrets in them, through the SDK only.

Values go in and never come out: no command prints one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from berth.cli.output import (
    OutputFormat,
    OutputOption,
    api_client,
    fail_input,
    print_json,
    print_table,
    when,
)

app = typer.Typer(help="Secrets, encrypted at rest, for endpoints to use.", no_args_is_help=True)

Scope = Annotated[str, typer.Argument(metavar="SCOPE", help="Secret scope name.")]
Key = Annotated[str, typer.Argument(metavar="KEY", help="Secret key within the scope.")]


@app.command("create-scope")
def create_scope(scope: Scope) -> None:
    """Create a secret scope."""
    with api_client() as client:
        client.secrets.create_scope(scope)
    typer.echo(f"Created secret scope {scope}.")


@app.command("list-scopes")
def list_scopes(output: OutputFormat = OutputOption) -> None:
    """List secret scopes."""
    with api_client() as client:
        scopes = client.secrets.list_scopes()
    if output is OutputFormat.json:
        print_json(scopes)
    else:
        rows = [(s["name"], s["backend_type"]) for s in scopes]
        print_table("Secret scopes", ["name", "backend"], rows)


@app.command("delete-scope")
def delete_scope(scope: Scope) -> None:
    """Delete a secret scope and every secret in it."""
    with api_client() as client:
        client.secrets.delete_scope(scope)
    typer.echo(f"Deleted secret scope {scope} and its secrets.")


@app.command()
def put(
    scope: Scope,
    key: Key,
    value: Annotated[
        str | None,
        typer.Option(help="The value as text (visible in shell history and to 'ps')."),
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Store this file's exact bytes as the value."
        ),
    ] = None,
) -> None:
    """Store a secret, overwriting any value under KEY.

    With neither --value nor --from-file the value is read from standard input: typed
    without echo at a terminal, or piped (one trailing newline dropped).
    """
    if value is not None and from_file is not None:
        raise fail_input("Give at most one of --value and --from-file.")
    secret: str | bytes
    if from_file is not None:
        secret = from_file.read_bytes()
    elif value is not None:
        secret = value
    else:
        secret = _read_stdin()
    with api_client() as client:
        client.secrets.put(scope, key, secret)
    typer.echo(f"Stored secret {key} in scope {scope}.")


@app.command("list")
def list_secrets(scope: Scope, output: OutputFormat = OutputOption) -> None:
    """List the keys in a scope (never their values)."""
    with api_client() as client:
        found = client.secrets.list(scope)
    if output is OutputFormat.json:
        print_json(found)
    else:
        rows = [(s["key"], when(s["last_updated_timestamp"])) for s in found]
        print_table(f"Secrets in {scope}", ["key", "last updated"], rows)


@app.command()
def delete(scope: Scope, key: Key) -> None:
    """Delete one secret."""
    with api_client() as client:
        client.secrets.delete(scope, key)
    typer.echo(f"Deleted secret {key} from scope {scope}.")


def _read_stdin() -> str:
    if sys.stdin.isatty():
        typed: str = typer.prompt("Value", hide_input=True, err=True)
        return typed
    piped = sys.stdin.read()
    return piped.removesuffix("\n").removesuffix("\r")
