"""Users, service principals, groups and tokens against real servers on SQLite and PostgreSQL:
the real databricks-sdk end to end, admin-only routes, and revocation, deactivation and expiry
refused on the control plane and the data plane within a second."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    ResourceAlreadyExists,
)
from databricks.sdk.service.iam import ComplexValue, Patch, PatchOp, PatchSchema

from tests.support.deploy import entity, register_model, unique, wait_ready
from tests.support.net import wait_until
from tests.support.servers import BerthServer

pytestmark = [pytest.mark.integration, pytest.mark.stores("sqlite", "postgresql")]

SCIM = "/api/2.0/preview/scim/v2"
PATCH_SCHEMAS = [PatchSchema.URN_IETF_PARAMS_SCIM_API_MESSAGES_2_0_PATCH_OP]
REVOCATION_LIMIT_S = 1.0


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    return str(body["message"])


@pytest.fixture
def workspace(server: BerthServer, monkeypatch: pytest.MonkeyPatch) -> WorkspaceClient:
    """The real SDK on berth, whatever the developer's own Databricks settings are."""
    for variable in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CONFIG_FILE", "DATABRICKS_CLIENT_ID"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DATABRICKS_HOST", server.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", server.token)
    return WorkspaceClient(host=server.url, token=server.token)


@pytest.fixture(scope="module")
def endpoint(server: BerthServer) -> Iterator[str]:
    """A ready endpoint serving the echo model, for data-plane checks."""
    with server.client() as api:
        model = register_model(api, prefix="identity-echo")
        name = unique("identity")
        config = {"served_entities": [entity(model, "1")]}
        _ok(api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config}))
        wait_ready(api, name)
        yield name
        api.delete(f"/api/2.0/serving-endpoints/{name}")


def make_user(api: httpx.Client, *, admin: bool = False) -> tuple[str, str]:
    """A new user (made an admin if asked, so per-endpoint permissions cannot get in the way)
    and a token made for it; (its id, the token)."""
    name = f"{unique('user')}@example.com"
    user_id = _ok(api.post(f"{SCIM}/Users", json={"userName": name}))["id"]
    if admin:
        admins = _ok(api.get(f"{SCIM}/Groups", params={"filter": 'displayName eq "admins"'}))
        add = {"op": "add", "path": "members", "value": [{"value": user_id}]}
        _ok(api.patch(f"{SCIM}/Groups/{admins['Resources'][0]['id']}", json={"Operations": [add]}))
    made = api.post("/api/2.0/token-management/on-behalf-of/tokens", json={"application_id": name})
    return user_id, _ok(made)["token_value"]


def test_sdk_manages_users(workspace: WorkspaceClient) -> None:
    name = f"{unique('sdk')}@example.com"
    user = workspace.users.create(user_name=name, display_name="SDK User")
    assert (user.user_name, user.display_name, user.active) == (name, "SDK User", True)
    assert user.id is not None and user.id.isdigit()

    [listed] = workspace.users.list(filter=f'userName eq "{name}"')
    assert (listed.id, listed.user_name) == (user.id, name)
    assert name in [u.user_name for u in workspace.users.list()]
    got = workspace.users.get(user.id)
    assert (got.user_name, got.groups) == (name, [])

    workspace.users.patch(
        user.id,
        operations=[Patch(op=PatchOp.REPLACE, path="active", value="false")],
        schemas=PATCH_SCHEMAS,
    )
    assert workspace.users.get(user.id).active is False
    workspace.users.update(user.id, user_name=name, display_name="Renamed", active=True)
    assert (workspace.users.get(user.id).display_name, workspace.users.get(user.id).active) == (
        "Renamed",
        True,
    )
    with pytest.raises(ResourceAlreadyExists, match="already exists"):
        workspace.users.create(user_name=name)

    workspace.users.delete(user.id)
    with pytest.raises(NotFound, match=f"User with id '{user.id}' does not exist"):
        workspace.users.get(user.id)
    assert list(workspace.users.list(filter=f'userName eq "{name}"')) == []


def test_sdk_manages_groups_and_service_principals(workspace: WorkspaceClient) -> None:
    robot = workspace.service_principals.create(display_name="ci robot")
    assert robot.application_id and robot.id and robot.active
    named = workspace.service_principals.create(application_id=unique("app"), display_name="x")
    [found] = workspace.service_principals.list(filter=f'applicationId eq "{robot.application_id}"')
    assert (found.id, found.display_name) == (robot.id, "ci robot")
    user = workspace.users.create(user_name=f"{unique('member')}@example.com")
    assert user.id is not None and robot.id is not None and named.id is not None

    group_name = unique("team")
    group = workspace.groups.create(display_name=group_name, members=[ComplexValue(value=user.id)])
    assert group.id and [m.value for m in group.members or []] == [user.id]
    workspace.groups.patch(
        group.id,
        operations=[
            Patch(op=PatchOp.ADD, value={"members": [{"value": robot.id}, {"value": named.id}]})
        ],
        schemas=PATCH_SCHEMAS,
    )
    members = workspace.groups.get(group.id).members or []
    assert {m.value for m in members} == {user.id, robot.id, named.id}
    assert {m.ref for m in members} == {
        f"Users/{user.id}",
        f"ServicePrincipals/{robot.id}",
        f"ServicePrincipals/{named.id}",
    }
    workspace.groups.patch(
        group.id,
        operations=[Patch(op=PatchOp.REMOVE, path=f'members[value eq "{user.id}"]')],
        schemas=PATCH_SCHEMAS,
    )
    [listed] = workspace.groups.list(filter=f'displayName eq "{group_name}"')
    assert {m.value for m in listed.members or []} == {robot.id, named.id}
    assert [g.display for g in workspace.service_principals.get(robot.id).groups or []] == [
        group_name
    ]

    workspace.service_principals.delete(named.id)
    assert {m.value for m in workspace.groups.get(group.id).members or []} == {robot.id}
    workspace.groups.delete(group.id)
    with pytest.raises(NotFound):
        workspace.groups.get(group.id)
    workspace.service_principals.delete(robot.id)
    workspace.users.delete(user.id)


def test_sdk_manages_tokens(workspace: WorkspaceClient, server: BerthServer) -> None:
    made = workspace.tokens.create(comment="sdk", lifetime_seconds=600)
    assert made.token_value and made.token_info and made.token_info.token_id
    info, token_id = made.token_info, made.token_info.token_id
    assert info.comment == "sdk" and info.expiry_time == (info.creation_time or 0) + 600_000
    mine = {t.token_id: t for t in workspace.tokens.list()}
    assert mine[token_id].comment == "sdk"
    with server.client(made.token_value) as own:
        assert own.get("/api/2.0/serving-endpoints").status_code == 200

    robot = workspace.service_principals.create(display_name="obo")
    assert robot.application_id and robot.id
    obo = workspace.token_management.create_obo_token(
        application_id=robot.application_id, comment="for ci"
    )
    assert obo.token_value and obo.token_info and obo.token_info.token_id
    assert (obo.token_info.owner_id, obo.token_info.created_by_username) == (
        int(robot.id),
        "admin",
    )
    assert obo.token_info.expiry_time == -1
    robot_client = WorkspaceClient(host=server.url, token=obo.token_value)
    me = robot_client.current_user.me()
    assert (me.id, me.user_name) == (robot.id, robot.application_id)

    listed = workspace.token_management.list(created_by_username="admin")
    assert {token_id, obo.token_info.token_id} <= {t.token_id for t in listed}
    got = workspace.token_management.get(obo.token_info.token_id).token_info
    assert got is not None and (got.comment, got.owner_id) == ("for ci", int(robot.id))
    assert obo.token_info.token_id not in {t.token_id for t in workspace.tokens.list()}

    workspace.token_management.delete(obo.token_info.token_id)
    workspace.tokens.delete(token_id)
    assert token_id not in {t.token_id for t in workspace.tokens.list()}
    with pytest.raises(NotFound, match="does not exist"):
        workspace.tokens.delete(token_id)
    workspace.service_principals.delete(robot.id)


def test_sdk_knows_who_is_calling(workspace: WorkspaceClient, server: BerthServer) -> None:
    me = workspace.current_user.me()
    assert (me.user_name, me.active) == ("admin", True)
    assert "admins" in [g.display for g in me.groups or []]
    with server.client() as api:
        org_id = api.get(f"{SCIM}/Me").headers["X-Databricks-Org-Id"]
        announced = api.get("/.well-known/databricks-config").json()["workspace_id"]
    assert org_id == announced and workspace.get_workspace_id() == int(org_id)


def test_non_admins_only_see_themselves_and_their_own_tokens(
    api: httpx.Client, server: BerthServer
) -> None:
    user_id, token = make_user(api)
    admin_token = _ok(api.get("/api/2.0/token/list"))["token_infos"][0]["token_id"]
    with server.client(token) as user:
        for method, path in [
            ("GET", f"{SCIM}/Users"),
            ("POST", f"{SCIM}/Users"),
            ("GET", f"{SCIM}/Users/{user_id}"),
            ("DELETE", f"{SCIM}/Users/{user_id}"),
            ("GET", f"{SCIM}/ServicePrincipals"),
            ("GET", f"{SCIM}/Groups"),
            ("POST", f"{SCIM}/Groups"),
            ("GET", "/api/2.0/token-management/tokens"),
            ("POST", "/api/2.0/token-management/on-behalf-of/tokens"),
            ("GET", f"/api/2.0/token-management/tokens/{admin_token}"),
            ("DELETE", f"/api/2.0/token-management/tokens/{admin_token}"),
        ]:
            body = {"userName": "x", "displayName": "x", "application_id": "admin"}
            answer = user.request(method, path, json=body if method == "POST" else None)
            assert "Only admins" in _error(answer, 403, "PERMISSION_DENIED"), path

        assert _ok(user.get(f"{SCIM}/Me"))["id"] == user_id
        own = _ok(user.post("/api/2.0/token/create", json={"comment": "second"}))
        listed = _ok(user.get("/api/2.0/token/list"))["token_infos"]
        assert [t["comment"] for t in listed] == ["", "second"]
        assert own["token_info"]["token_id"] == listed[1]["token_id"]
        assert all(
            set(t) == {"token_id", "creation_time", "expiry_time", "comment"} for t in listed
        )
        refused = user.post("/api/2.0/token/delete", json={"token_id": admin_token})
        _error(refused, 404, "RESOURCE_DOES_NOT_EXIST")
    assert _ok(api.get(f"/api/2.0/token-management/tokens/{admin_token}"))["token_info"]


ERRORS: list[tuple[str, str, dict[str, Any] | None, int, str, str]] = [
    ("POST", "/Users", {"userName": "admin"}, 409, "RESOURCE_ALREADY_EXISTS", "already exists"),
    ("POST", "/Users", {"displayName": "no name"}, 400, "INVALID_PARAMETER_VALUE", "userName"),
    ("POST", "/Users", {"userName": "a", "emails": []}, 400, "INVALID_PARAMETER_VALUE", "emails"),
    ("POST", "/Groups", {"displayName": "admins"}, 409, "RESOURCE_ALREADY_EXISTS", "'admins'"),
    ("POST", "/Groups", {"displayName": "users"}, 400, "INVALID_PARAMETER_VALUE", "built in"),
    ("GET", "/Users/424242", None, 404, "RESOURCE_DOES_NOT_EXIST", "User with id '424242'"),
    ("GET", "/Users/abc", None, 404, "RESOURCE_DOES_NOT_EXIST", "User with id 'abc'"),
    ("GET", "/Groups/424242", None, 404, "RESOURCE_DOES_NOT_EXIST", "Group with id"),
    ("DELETE", "/ServicePrincipals/1", None, 404, "RESOURCE_DOES_NOT_EXIST", "Service principal"),
    ("DELETE", "/Users/1", None, 400, "INVALID_PARAMETER_VALUE", "'admin' user cannot be deleted"),
    ("DELETE", "/Groups/1", None, 400, "INVALID_PARAMETER_VALUE", "'admins' group cannot be"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code", "text"), ERRORS)
def test_scim_errors_say_what_to_fix(
    api: httpx.Client,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
    text: str,
) -> None:
    answer = api.request(method, SCIM + path, json=body)
    assert text in _error(answer, status, code)


def test_unsupported_filters_and_paging(api: httpx.Client) -> None:
    bad = api.get(f"{SCIM}/Users", params={"filter": 'userName eq "a" or userName eq "b"'})
    assert "no and/or" in _error(bad, 400, "INVALID_PARAMETER_VALUE")
    for _ in range(3):
        make_user(api)
    first = _ok(api.get(f"{SCIM}/Users", params={"startIndex": 2, "count": 2}))
    assert (first["startIndex"], first["itemsPerPage"], len(first["Resources"])) == (2, 2, 2)
    assert first["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    past = _ok(api.get(f"{SCIM}/Users", params={"startIndex": first["totalResults"] + 1}))
    assert (past["Resources"], past["totalResults"]) == ([], first["totalResults"])


Check = Callable[[str], int]


def planes(server: BerthServer, endpoint: str) -> dict[str, Check]:
    """How each plane answers a token: the control plane lists endpoints, the data plane
    queries ``endpoint``."""

    def control(token: str) -> int:
        return httpx.get(
            f"{server.url}/api/2.0/serving-endpoints",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).status_code

    def data(token: str) -> int:
        return httpx.post(
            f"{server.url}/serving-endpoints/{endpoint}/invocations",
            headers={"Authorization": f"Bearer {token}"},
            json={"inputs": [1]},
            timeout=10,
        ).status_code

    return {"control plane": control, "data plane": data}


def _answers(check: Check, token: str, status: int) -> bool:
    return check(token) == status


def wait_accepted(checks: dict[str, Check], token: str) -> None:
    for plane, check in checks.items():
        wait_until(partial(_answers, check, token, 200), timeout=5, what=f"the {plane} to accept")


def seconds_until_refused(checks: dict[str, Check], token: str, since: float) -> dict[str, float]:
    """Poll each plane until it answers 401; seconds from ``since`` until it did."""
    elapsed = {}
    for plane, check in checks.items():
        wait_until(
            partial(_answers, check, token, 401),
            timeout=10,
            what=f"the {plane} to refuse",
            every=0.01,
        )
        elapsed[plane] = time.monotonic() - since
    return elapsed


def test_a_revoked_token_is_refused_on_both_planes_within_a_second(
    api: httpx.Client, server: BerthServer, endpoint: str
) -> None:
    checks = planes(server, endpoint)
    for revoke in ("own", "admin"):
        made = _ok(api.post("/api/2.0/token/create", json={"comment": f"revoked by {revoke}"}))
        token, token_id = made["token_value"], made["token_info"]["token_id"]
        wait_accepted(checks, token)
        started = time.monotonic()
        if revoke == "own":
            _ok(api.post("/api/2.0/token/delete", json={"token_id": token_id}))
        else:
            _ok(api.delete(f"/api/2.0/token-management/tokens/{token_id}"))
        elapsed = seconds_until_refused(checks, token, started)
        assert all(s < REVOCATION_LIMIT_S for s in elapsed.values()), (revoke, elapsed)


def test_deactivating_or_deleting_a_user_refuses_its_tokens_within_a_second(
    api: httpx.Client, server: BerthServer, endpoint: str
) -> None:
    checks = planes(server, endpoint)
    user_id, token = make_user(api, admin=True)
    wait_accepted(checks, token)
    started = time.monotonic()
    deactivate = {"Operations": [{"op": "replace", "path": "active", "value": False}]}
    _ok(api.patch(f"{SCIM}/Users/{user_id}", json=deactivate))
    elapsed = seconds_until_refused(checks, token, started)
    assert all(s < REVOCATION_LIMIT_S for s in elapsed.values()), elapsed

    _ok(api.put(f"{SCIM}/Users/{user_id}", json={"active": True}))
    wait_accepted(checks, token)
    started = time.monotonic()
    assert api.delete(f"{SCIM}/Users/{user_id}").status_code == 204
    elapsed = seconds_until_refused(checks, token, started)
    assert all(s < REVOCATION_LIMIT_S for s in elapsed.values()), elapsed


def test_an_expired_token_is_refused_on_both_planes(
    api: httpx.Client, server: BerthServer, endpoint: str
) -> None:
    checks = planes(server, endpoint)
    made = _ok(api.post("/api/2.0/token/create", json={"lifetime_seconds": 3, "comment": "brief"}))
    wait_accepted(checks, made["token_value"])
    expiry = made["token_info"]["expiry_time"] / 1000
    seconds_until_refused(checks, made["token_value"], time.monotonic())
    assert expiry <= time.time() < expiry + REVOCATION_LIMIT_S
    listed = {t["token_id"]: t for t in _ok(api.get("/api/2.0/token/list"))["token_infos"]}
    assert (
        listed[made["token_info"]["token_id"]]["expiry_time"] == made["token_info"]["expiry_time"]
    )


def test_token_values_are_checked(api: httpx.Client) -> None:
    for lifetime in (0, -5):
        answer = api.post("/api/2.0/token/create", json={"lifetime_seconds": lifetime})
        assert "positive" in _error(answer, 400, "INVALID_PARAMETER_VALUE")
    unknown = api.post(
        "/api/2.0/token-management/on-behalf-of/tokens", json={"application_id": "nobody"}
    )
    assert "'nobody'" in _error(unknown, 404, "RESOURCE_DOES_NOT_EXIST")
    missing = api.get("/api/2.0/token-management/tokens/0123")
    assert "'0123'" in _error(missing, 404, "RESOURCE_DOES_NOT_EXIST")


def test_sdk_errors_are_the_databricks_ones(
    workspace: WorkspaceClient, server: BerthServer
) -> None:
    with pytest.raises(InvalidParameterValue, match="cannot be deleted"):
        workspace.users.delete("1")
    with server.client() as api:
        _, token = make_user(api)
    other = WorkspaceClient(host=server.url, token=token)
    with pytest.raises(PermissionDenied, match="Only admins"):
        list(other.users.list())
