"""``berth tokens ...``: your own access tokens and, for admins, anyone's.

A new token's value goes to standard output alone (``TOKEN=$(berth tokens create)`` works) and
is never shown again; everything else goes to standard error.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import typer

from berth.cli.output import (
    OutputFormat,
    OutputOption,
    api_client,
    err_console,
    fail_input,
    print_json,
    print_table,
    when,
)
from berth.cli.users import principal_names

app = typer.Typer(help="Access tokens: yours, and (admins) anyone's.", no_args_is_help=True)

Json = dict[str, Any]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LIFETIME = re.compile(r"(\d+)([smhd]?)")


def parse_lifetime(text: str | None) -> int | None:
    """``90d``, ``12h``, ``30m``, ``45s`` or plain seconds, as seconds."""
    if text is None:
        return None
    found = _LIFETIME.fullmatch(text.strip().lower())
    if found is None or int(found[1]) == 0:
        raise fail_input(
            f"Invalid --lifetime {text!r}: give a positive number of seconds, or one with a "
            "unit such as 90d, 12h or 30m."
        )
    return int(found[1]) * _UNITS[found[2] or "s"]


@app.command()
def create(
    comment: Annotated[str, typer.Option(help="What the token is for.")] = "",
    lifetime: Annotated[
        str | None,
        typer.Option(help="How long it lasts: 90d, 12h, 30m or seconds (default: no expiry)."),
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(
            "--for",
            metavar="NAME",
            help="Make it for this user or service principal instead of you (admins).",
        ),
    ] = None,
    output: OutputFormat = OutputOption,
) -> None:
    """Create a token; its value is printed once, now."""
    seconds = parse_lifetime(lifetime)
    with api_client() as client:
        if owner is None:
            created = client.tokens.create(seconds, comment)
        else:
            created = client.tokens.create_for(owner, seconds, comment)
    if output is OutputFormat.json:
        print_json(created)
        return
    info = created["token_info"]
    err_console.print(
        f"Created token {info['token_id']} for {owner or 'you'}, expiring "
        f"{_expiry(info)}. Its value, shown only this once:",
        highlight=False,
    )
    typer.echo(created["token_value"])


@app.command("list")
def list_tokens(
    everyone: Annotated[
        bool, typer.Option("--all", help="Every principal's tokens, not only yours (admins).")
    ] = False,
    output: OutputFormat = OutputOption,
) -> None:
    """List tokens (never their values)."""
    with api_client() as client:
        found = client.tokens.list_all() if everyone else client.tokens.list()
        owners = principal_names(client) if everyone else {}
    if output is OutputFormat.json:
        print_json(found)
        return
    columns = ["token id", "comment", "created", "expires"]
    rows = [[t["token_id"], t["comment"], when(t["creation_time"]), _expiry(t)] for t in found]
    if everyone:
        columns += ["owner", "made by"]
        for row, token in zip(rows, found, strict=True):
            row += [
                owners.get(str(token["owner_id"]), token["owner_id"]),
                token["created_by_username"],
            ]
    print_table("All tokens" if everyone else "Your tokens", columns, rows)


@app.command()
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="TOKEN_ID", help="From 'berth tokens list'.")],
    anyone: Annotated[
        bool, typer.Option("--any", help="Revoke a token of any principal (admins).")
    ] = False,
) -> None:
    """Revoke a token: it is refused everywhere within a second."""
    with api_client() as client:
        if anyone:
            client.tokens.delete_any(token_id)
        else:
            client.tokens.delete(token_id)
    typer.echo(f"Revoked token {token_id}.")


def _expiry(info: Json) -> str:
    expires = info["expiry_time"]
    if expires < 0:
        return "never"
    return when(expires) + (" (expired)" if expires <= time.time() * 1000 else "")
