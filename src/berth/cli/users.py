"""``berth users ...``: users and, with ``--service-principal``, service principals (admins).

Principals are named by their userName (a service principal's applicationId), never by id.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from berth.cli.output import (
    OutputFormat,
    OutputOption,
    api_client,
    fail_input,
    print_fields,
    print_json,
    print_table,
)
from berth.client import BerthClient
from berth.client.identity import ServicePrincipalsApi, UsersApi

app = typer.Typer(
    help="Users and service principals, and whether their tokens count (admins only).",
    no_args_is_help=True,
)

Json = dict[str, Any]

Name = Annotated[
    str,
    typer.Argument(metavar="NAME", help="userName, or a service principal's applicationId."),
]
ServicePrincipal = Annotated[
    bool,
    typer.Option("--service-principal", "-s", help="A service principal rather than a user."),
]
COLUMNS = ["id", "name", "display name", "active", "groups"]


def principals(client: BerthClient, service_principal: bool) -> UsersApi | ServicePrincipalsApi:
    return client.service_principals if service_principal else client.users


def principal_name(item: Json) -> str:
    return str(item.get("userName") or item.get("applicationId") or "")


def principal_names(client: BerthClient) -> dict[str, str]:
    """Every principal's id to its name, for tables that would otherwise show ids."""
    found = [*client.users.list(), *client.service_principals.list()]
    return {str(p["id"]): principal_name(p) for p in found}


@app.command("list")
def list_principals(
    service_principal: ServicePrincipal = False, output: OutputFormat = OutputOption
) -> None:
    """List users (or service principals) with their groups."""
    with api_client() as client:
        found = principals(client, service_principal).list()
    if output is OutputFormat.json:
        print_json(found)
        return
    title = "Service principals" if service_principal else "Users"
    print_table(title, COLUMNS, [_row(item) for item in found])


@app.command()
def create(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME]",
            help="userName (required for a user); a service principal without one gets a UUID.",
        ),
    ] = None,
    display_name: Annotated[str | None, typer.Option(help="A readable name.")] = None,
    service_principal: ServicePrincipal = False,
    output: OutputFormat = OutputOption,
) -> None:
    """Create a user or a service principal; give it a token with 'berth tokens create --for'."""
    if name is None and not service_principal:
        raise fail_input("Give the new user's NAME (its userName, e.g. an e-mail address).")
    with api_client() as client:
        if service_principal:
            created = client.service_principals.create(name, display_name)
        else:
            assert name is not None
            created = client.users.create(name, display_name)
    _show(created, output, "Created")


@app.command()
def get(
    name: Name, service_principal: ServicePrincipal = False, output: OutputFormat = OutputOption
) -> None:
    """Show one user or service principal."""
    with api_client() as client:
        found = principals(client, service_principal).find(name)
    _show(found, output)


@app.command()
def delete(name: Name, service_principal: ServicePrincipal = False) -> None:
    """Delete a user or service principal with its tokens and group memberships."""
    with api_client() as client:
        api = principals(client, service_principal)
        api.delete(api.find(name)["id"])
    typer.echo(f"Deleted {name}; its tokens no longer work.")


@app.command()
def deactivate(name: Name, service_principal: ServicePrincipal = False) -> None:
    """Refuse every token of NAME at once, keeping them for 'berth users activate'."""
    _set_active(name, service_principal, False)
    typer.echo(f"Deactivated {name}; its tokens are refused until it is activated again.")


@app.command()
def activate(name: Name, service_principal: ServicePrincipal = False) -> None:
    """Accept NAME's tokens again."""
    _set_active(name, service_principal, True)
    typer.echo(f"Activated {name}.")


def _set_active(name: str, service_principal: bool, active: bool) -> None:
    with api_client() as client:
        api = principals(client, service_principal)
        api.update(api.find(name)["id"], active=active)


def _row(item: Json) -> list[Any]:
    groups = ", ".join(g.get("display", "") for g in item.get("groups", []))
    return [item["id"], principal_name(item), item.get("displayName"), item.get("active"), groups]


def _show(item: Json, output: OutputFormat, verb: str | None = None) -> None:
    if output is OutputFormat.json:
        print_json(item)
        return
    kind = "user" if "userName" in item else "service principal"
    if verb is not None:
        typer.echo(f"{verb} {kind} {principal_name(item)} (id {item['id']}).")
    print_fields(list(zip(COLUMNS, _row(item), strict=True)))
