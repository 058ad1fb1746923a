"""``berth users|groups|tokens ...`` as a person runs them: the real CLI (in-process) against a
real server, as the admin and as an ordinary user."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.cli import Cli
from tests.support.deploy import unique
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(server: BerthServer) -> Cli:
    return Cli(server.url, server.token)


def whoami(server: BerthServer, token: str) -> httpx.Response:
    with server.client(token) as client:
        return client.get("/api/2.0/preview/scim/v2/Me")


def test_users_service_principals_and_groups(admin: Cli) -> None:
    alice = f"{unique('alice')}@example.com"
    assert admin.ok("users", "create", alice, "--display-name", "Alice A.").startswith(
        f"Created user {alice} (id "
    )
    listed = admin.ok("users", "list")
    assert alice in listed and "Alice A." in listed
    [row] = [u for u in admin.json("users", "list") if u["userName"] == alice]
    assert (row["displayName"], row["active"]) == ("Alice A.", True)

    robot = admin.json("users", "create", "--service-principal", "--display-name", "robot")
    app_id = robot["applicationId"]
    assert str(uuid.UUID(app_id)) == app_id
    assert app_id in admin.ok("users", "list", "--service-principal")
    assert admin.json("users", "get", app_id, "-s")["id"] == robot["id"]

    team = unique("team")
    admin.ok("groups", "create", team, "--member", alice)
    assert admin.ok("groups", "add-member", team, app_id) == f"Added {app_id} to {team}.\n"
    [group] = [g for g in admin.json("groups", "list") if g["displayName"] == team]
    assert {m["value"] for m in group["members"]} == {row["id"], robot["id"]}
    assert team in admin.ok("groups", "list")
    admin.ok("groups", "remove-member", team, alice)
    [group] = [g for g in admin.json("groups", "list") if g["displayName"] == team]
    assert [m["value"] for m in group["members"]] == [robot["id"]]
    assert [g["display"] for g in admin.json("users", "get", app_id, "-s")["groups"]] == [team]

    admin.ok("groups", "delete", team)
    assert team not in admin.ok("groups", "list")
    admin.ok("users", "delete", app_id, "--service-principal")
    assert f"Deleted {alice}" in admin.ok("users", "delete", alice)
    assert "RESOURCE_DOES_NOT_EXIST (404)" in admin.fails("users", "get", alice)
    assert "No user or service principal is named 'nobody'" in admin.fails(
        "groups", "create", unique("g"), "--member", "nobody"
    )
    assert "Give the new user's NAME" in admin.fails("users", "create", code=2)
    assert "'admin' user cannot be deleted" in admin.fails("users", "delete", "admin")


def test_tokens_made_listed_deactivated_and_revoked(admin: Cli, server: BerthServer) -> None:
    alice = f"{unique('alice')}@example.com"
    admin.ok("users", "create", alice)
    done = admin("tokens", "create", "--for", alice, "--comment", "ci", "--lifetime", "1h")
    assert done.exit_code == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("bth_") and done.stdout == token + "\n"
    assert "shown only this once" in done.stderr and token not in done.stderr
    assert whoami(server, token).json()["userName"] == alice

    user = Cli(server.url, token)
    [ci] = user.json("tokens", "list")
    assert ci["comment"] == "ci" and ci["expiry_time"] - ci["creation_time"] == 3_600_000
    own = user.json("tokens", "create", "--comment", "own")
    assert own["token_info"]["expiry_time"] == -1
    table = user.ok("tokens", "list")
    assert "ci" in table and "own" in table and "never" in table and token not in table
    everyone = admin.ok("tokens", "list", "--all")
    assert alice in everyone and ci["token_id"] in everyone
    assert "PERMISSION_DENIED (403)" in user.fails("tokens", "list", "--all")
    assert "PERMISSION_DENIED (403)" in user.fails("users", "list")

    admin.ok("users", "deactivate", alice)
    assert whoami(server, token).status_code == 401
    admin.ok("users", "activate", alice)
    assert whoami(server, token).status_code == 200

    assert user.ok("tokens", "revoke", ci["token_id"]) == f"Revoked token {ci['token_id']}.\n"
    assert whoami(server, token).status_code == 401
    second = own["token_info"]["token_id"]
    assert "RESOURCE_DOES_NOT_EXIST" in admin.fails("tokens", "revoke", second)
    admin.ok("tokens", "revoke", "--any", second)
    assert whoami(server, own["token_value"]).status_code == 401
    assert "Invalid --lifetime '0'" in admin.fails("tokens", "create", "--lifetime", "0", code=2)
