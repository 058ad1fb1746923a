"""``berth groups ...``: groups and their members (admins only), all named rather than by id."""

from __future__ import annotations

from typing import Annotated

import typer

from berth.cli.output import OutputFormat, OutputOption, api_client, print_json, print_table
from berth.cli.users import principal_names
from berth.client import ApiError, BerthClient

app = typer.Typer(
    help="Groups of users and service principals (admins only).", no_args_is_help=True
)

Group = Annotated[str, typer.Argument(metavar="GROUP", help="Group name (its displayName).")]
Member = Annotated[
    str,
    typer.Argument(
        metavar="MEMBER", help="userName of a user, or applicationId of a service principal."
    ),
]


@app.command("list")
def list_groups(output: OutputFormat = OutputOption) -> None:
    """List groups and their members."""
    with api_client() as client:
        found = client.groups.list()
        names = principal_names(client) if output is OutputFormat.table else {}
    if output is OutputFormat.json:
        print_json(found)
        return
    rows = [
        (
            g["id"],
            g["displayName"],
            ", ".join(names.get(m["value"], m["value"]) for m in g["members"]),
        )
        for g in found
    ]
    print_table("Groups", ["id", "name", "members"], rows)


@app.command()
def create(
    group: Group,
    member: Annotated[
        list[str] | None, typer.Option(help="A member to add (repeat for more).")
    ] = None,
) -> None:
    """Create a group, optionally with members."""
    with api_client() as client:
        ids = [principal_id(client, name) for name in member or []]
        created = client.groups.create(group, ids)
    typer.echo(f"Created group {group} (id {created['id']}).")


@app.command("add-member")
def add_member(group: Group, member: Member) -> None:
    """Add a user or service principal to a group."""
    with api_client() as client:
        client.groups.add_members(client.groups.find(group)["id"], [principal_id(client, member)])
    typer.echo(f"Added {member} to {group}.")


@app.command("remove-member")
def remove_member(group: Group, member: Member) -> None:
    """Remove a user or service principal from a group."""
    with api_client() as client:
        found = client.groups.find(group)
        client.groups.remove_members(found["id"], [principal_id(client, member)])
    typer.echo(f"Removed {member} from {group}.")


@app.command()
def delete(group: Group) -> None:
    """Delete a group (its members stay)."""
    with api_client() as client:
        client.groups.delete(client.groups.find(group)["id"])
    typer.echo(f"Deleted group {group}.")


def principal_id(client: BerthClient, name: str) -> str:
    """The id of the user, else the service principal, called ``name``."""
    for api in (client.users, client.service_principals):
        try:
            return str(api.find(name)["id"])
        except ApiError as exc:
            if exc.status != 404:
                raise
    raise ApiError(
        "RESOURCE_DOES_NOT_EXIST",
        f"No user or service principal is named '{name}'; see 'berth users list' "
        "(add --service-principal for service principals).",
        404,
    )
