"""Per-object permissions: every control-plane and data-plane operation on an endpoint answers
200 or 403 as the caller's level says, for direct grants, group grants and no grant; secret
scopes follow their ACLs and registered models their permissions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.deploy import (
    ECHO,
    entity,
    register,
    unique,
    upload_version,
    wait_ready,
    wait_settled,
)
from tests.support.identity import make_user
from tests.support.servers import BerthServer

pytestmark = [pytest.mark.integration, pytest.mark.stores("sqlite", "postgresql")]

LEVELS = ["CAN_VIEW", "CAN_QUERY", "CAN_MANAGE"]


@dataclass(frozen=True)
class Caller:
    name: str
    client: httpx.Client


@pytest.fixture
def people(api: httpx.Client, server: BerthServer) -> Iterator[dict[str, Caller]]:
    """An owner, one user per level, one with no grant, one in a group granted CAN_QUERY."""
    callers: dict[str, Caller] = {}
    ids: dict[str, str] = {}
    for role in ["owner", "none", "grouped", *LEVELS]:
        name = unique(role.lower().replace("_", ""))
        ids[role], client = make_user(api, server, name)
        callers[role] = Caller(name, client)
    group = unique("team")
    made = api.post(
        "/api/2.0/preview/scim/v2/Groups",
        json={"displayName": group, "members": [{"value": ids["grouped"]}]},
    )
    assert made.status_code == 200, made.text
    callers["group"] = Caller(group, api)
    yield callers
    for caller in callers.values():
        if caller.client is not api:
            caller.client.close()


def wait_queriers(api: httpx.Client, name: str, expected: set[str]) -> None:
    """Until the data plane's route for ``name`` lets exactly ``expected`` keys query."""
    version, deadline = -1, time.monotonic() + 30
    while time.monotonic() < deadline:
        snapshot = api.get("/api/2.0/berth/data-plane", params={"after": version, "timeout": 5})
        version = snapshot.json()["version"]
        routes = [r for r in snapshot.json()["endpoints"] if r["name"] == name]
        if routes and set(routes[0]["queriers"]) == expected:
            return
    raise AssertionError(f"the data plane never let {expected} query {name}")


Operation = Callable[[httpx.Client, str, str], httpx.Response]

# (what, the least level that may do it, how)
OPERATIONS: list[tuple[str, str, Operation]] = [
    ("get", "CAN_VIEW", lambda c, n, i: c.get(f"/api/2.0/serving-endpoints/{n}")),
    ("events", "CAN_VIEW", lambda c, n, i: c.get(f"/api/2.0/serving-endpoints/{n}/events")),
    (
        "logs",
        "CAN_VIEW",
        lambda c, n, i: c.get(f"/api/2.0/serving-endpoints/{n}/served-models/{n}-1/logs"),
    ),
    (
        "build-logs",
        "CAN_VIEW",
        lambda c, n, i: c.get(f"/api/2.0/serving-endpoints/{n}/served-models/{n}-1/build-logs"),
    ),
    (
        "permissions",
        "CAN_VIEW",
        lambda c, n, i: c.get(f"/api/2.0/permissions/serving-endpoints/{i}"),
    ),
    (
        "permission levels",
        "CAN_VIEW",
        lambda c, n, i: c.get(f"/api/2.0/permissions/serving-endpoints/{i}/permissionLevels"),
    ),
    (
        "invocations",
        "CAN_QUERY",
        lambda c, n, i: c.post(f"/serving-endpoints/{n}/invocations", json={"inputs": [1]}),
    ),
    ("predict", "CAN_QUERY", lambda c, n, i: c.post(f"/serving-endpoints/{n}/predict", json={})),
    (
        "tags",
        "CAN_MANAGE",
        lambda c, n, i: c.patch(
            f"/api/2.0/serving-endpoints/{n}/tags", json={"add_tags": [{"key": "k"}]}
        ),
    ),
    (
        "rate limits",
        "CAN_MANAGE",
        lambda c, n, i: c.put(f"/api/2.0/serving-endpoints/{n}/rate-limits", json={}),
    ),
    (
        "ai gateway",
        "CAN_MANAGE",
        lambda c, n, i: c.put(f"/api/2.0/serving-endpoints/{n}/ai-gateway", json={}),
    ),
    (
        "notifications",
        "CAN_MANAGE",
        lambda c, n, i: c.patch(f"/api/2.0/serving-endpoints/{n}/notifications", json={}),
    ),
    (
        "set permissions",
        "CAN_MANAGE",
        lambda c, n, i: c.patch(
            f"/api/2.0/permissions/serving-endpoints/{i}", json={"access_control_list": []}
        ),
    ),
]


def test_every_endpoint_operation_answers_by_level(
    api: httpx.Client, people: dict[str, Caller]
) -> None:
    owner = people["owner"]
    model = unique("perm")
    register(api, model, ECHO)
    grant = {"access_control_list": [{"user_name": owner.name, "permission_level": "CAN_READ"}]}
    assert api.patch(f"/api/2.0/permissions/registered-models/{model}", json=grant).is_success
    created = owner.client.post(
        "/api/2.0/serving-endpoints",
        json={"name": model, "config": {"served_entities": [entity(model, "1")]}},
    )
    assert created.status_code == 200, created.text
    endpoint_id = created.json()["id"]
    wait_ready(owner.client, model)

    acl = [{"user_name": people[level].name, "permission_level": level} for level in LEVELS]
    acl.append({"group_name": people["group"].name, "permission_level": "CAN_QUERY"})
    patched = owner.client.patch(
        f"/api/2.0/permissions/serving-endpoints/{endpoint_id}", json={"access_control_list": acl}
    )
    assert patched.status_code == 200, patched.text
    wait_queriers(
        api,
        model,
        {
            f"u:{owner.name}",
            f"u:{people['CAN_QUERY'].name}",
            f"u:{people['CAN_MANAGE'].name}",
            f"g:{people['group'].name}",
        },
    )

    held = {"none": None, "grouped": "CAN_QUERY", "owner": "CAN_MANAGE"} | {v: v for v in LEVELS}
    for role, level in held.items():
        caller = people[role]
        for what, needed, operation in OPERATIONS:
            answer = operation(caller.client, model, endpoint_id)
            allowed = level is not None and LEVELS.index(level) >= LEVELS.index(needed)
            expected = 200 if allowed else 403
            assert answer.status_code == expected, (role, what, answer.text)
            if not allowed:
                assert answer.json()["error_code"] == "PERMISSION_DENIED"
                assert needed in answer.json()["message"], (role, what)
        listed = caller.client.get("/api/2.0/serving-endpoints").json()["endpoints"]
        assert (model in [e["name"] for e in listed]) == (level is not None), role
        models_seen = caller.client.get("/serving-endpoints/models").json()["data"]
        may_query = level is not None and level != "CAN_VIEW"
        assert (model in [m["id"] for m in models_seen]) == may_query, role
        if level is not None:
            detail = caller.client.get(f"/api/2.0/serving-endpoints/{model}").json()
            assert detail["permission_level"] == level

    config = {"served_entities": [entity(model, "1")]}
    for role in ["none", "grouped", "CAN_VIEW", "CAN_QUERY"]:
        refused = people[role].client.put(f"/api/2.0/serving-endpoints/{model}/config", json=config)
        assert refused.status_code == 403, role
        deleted = people[role].client.delete(f"/api/2.0/serving-endpoints/{model}")
        assert deleted.status_code == 403, role
    manager = people["CAN_MANAGE"].client
    unreadable = manager.put(f"/api/2.0/serving-endpoints/{model}/config", json=config)
    assert unreadable.status_code == 403 and "CAN_READ" in unreadable.json()["message"]
    grant = {
        "access_control_list": [
            {"user_name": people["CAN_MANAGE"].name, "permission_level": "CAN_READ"}
        ]
    }
    assert api.patch(f"/api/2.0/permissions/registered-models/{model}", json=grant).is_success
    assert manager.put(f"/api/2.0/serving-endpoints/{model}/config", json=config).is_success
    wait_settled(api, model)
    assert manager.delete(f"/api/2.0/serving-endpoints/{model}").status_code == 200


def test_a_revoked_grant_stops_queries_and_only_managers_change_grants(
    api: httpx.Client, people: dict[str, Caller]
) -> None:
    model = unique("revoke")
    register(api, model, ECHO)
    created = api.post(
        "/api/2.0/serving-endpoints",
        json={"name": model, "config": {"served_entities": [entity(model, "1")]}},
    )
    endpoint_id = created.json()["id"]
    wait_ready(api, model)
    querier = people["CAN_QUERY"]
    path = f"/api/2.0/permissions/serving-endpoints/{endpoint_id}"
    grant = [{"user_name": querier.name, "permission_level": "CAN_QUERY"}]
    assert api.put(path, json={"access_control_list": grant}).is_success
    wait_queriers(api, model, {f"u:{querier.name}"})
    query = f"/serving-endpoints/{model}/invocations"
    assert querier.client.post(query, json={"inputs": [1]}).status_code == 200
    escalate = [{"user_name": querier.name, "permission_level": "CAN_MANAGE"}]
    assert querier.client.patch(path, json={"access_control_list": escalate}).status_code == 403

    assert api.put(path, json={"access_control_list": []}).is_success
    wait_queriers(api, model, set())
    assert querier.client.post(query, json={"inputs": [1]}).status_code == 403
    shown = api.get(path).json()["access_control_list"]
    assert shown == [
        {
            "group_name": "admins",
            "all_permissions": [
                {
                    "permission_level": "CAN_MANAGE",
                    "inherited": True,
                    "inherited_from_object": ["/serving-endpoints/"],
                }
            ],
        }
    ]
    unknown = [{"user_name": "nobody-at-all", "permission_level": "CAN_VIEW"}]
    refused = api.patch(path, json={"access_control_list": unknown})
    assert refused.status_code == 400 and "nobody-at-all" in refused.json()["message"]
    wrong = [{"user_name": querier.name, "permission_level": "MANAGE"}]
    assert api.patch(path, json={"access_control_list": wrong}).status_code == 400


def test_registered_model_permissions_gate_reading_registering_and_serving(
    api: httpx.Client, people: dict[str, Caller]
) -> None:
    owner, reader, stranger = people["owner"], people["CAN_VIEW"], people["none"]
    model = unique("owned")
    assert owner.client.post("/api/2.0/models", json={"name": model}).status_code == 200
    version = upload_version(owner.client, model, ECHO)
    assert version.status_code == 200, version.text
    assert stranger.client.get(f"/api/2.0/models/{model}").status_code == 403
    listed = stranger.client.get("/api/2.0/models").json().get("models", [])
    assert model not in [m["name"] for m in listed]
    serve = {"name": unique("nope"), "config": {"served_entities": [entity(model, "1")]}}
    refused = stranger.client.post("/api/2.0/serving-endpoints", json=serve)
    assert refused.status_code == 403 and "CAN_READ" in refused.json()["message"]

    path = f"/api/2.0/permissions/registered-models/{model}"
    grant = [{"user_name": reader.name, "permission_level": "CAN_READ"}]
    assert owner.client.patch(path, json={"access_control_list": grant}).is_success
    assert reader.client.get(f"/api/2.0/models/{model}/versions/1").status_code == 200
    register_more = upload_version(reader.client, model, ECHO)
    assert register_more.status_code == 403 and "CAN_EDIT" in register_more.json()["message"]
    assert reader.client.delete(f"/api/2.0/models/{model}").status_code == 403
    assert owner.client.delete(f"/api/2.0/models/{model}").status_code == 200


def test_secret_scope_acls(api: httpx.Client, people: dict[str, Caller]) -> None:
    owner, reader, writer, stranger = (
        people["owner"],
        people["CAN_VIEW"],
        people["CAN_QUERY"],
        people["none"],
    )
    scope = unique("scope")
    assert owner.client.post("/api/2.0/secrets/scopes/create", json={"scope": scope}).is_success
    put = {"scope": scope, "key": "k", "string_value": "v"}
    assert owner.client.post("/api/2.0/secrets/put", json=put).is_success
    for name, permission in ((reader.name, "READ"), (writer.name, "WRITE")):
        acl = {"scope": scope, "principal": name, "permission": permission}
        assert owner.client.post("/api/2.0/secrets/acls/put", json=acl).is_success

    listing = {"scope": scope}
    assert stranger.client.get("/api/2.0/secrets/list", params=listing).status_code == 403
    assert reader.client.get("/api/2.0/secrets/list", params=listing).status_code == 200
    assert reader.client.post("/api/2.0/secrets/put", json=put).status_code == 403
    assert writer.client.post("/api/2.0/secrets/put", json=put).status_code == 200
    acls = writer.client.get("/api/2.0/secrets/acls/list", params=listing)
    assert acls.status_code == 403 and "MANAGE" in acls.json()["message"]
    items = owner.client.get("/api/2.0/secrets/acls/list", params=listing).json()["items"]
    assert {(i["principal"], i["permission"]) for i in items} == {
        (owner.name, "MANAGE"),
        (reader.name, "READ"),
        (writer.name, "WRITE"),
    }

    reference = {"REF": f"{{{{secrets/{scope}/k}}}}"}
    model = unique("sec")
    register(api, model, ECHO)
    for caller in (owner, stranger):
        grant = [{"user_name": caller.name, "permission_level": "CAN_READ"}]
        api.patch(
            f"/api/2.0/permissions/registered-models/{model}", json={"access_control_list": grant}
        )
    served = entity(model, "1", environment_vars=reference)
    body = {"name": unique("ref"), "config": {"served_entities": [served]}}
    refused = stranger.client.post("/api/2.0/serving-endpoints", json=body)
    assert refused.status_code == 403 and f"secret scope '{scope}'" in refused.json()["message"]
    delete = {"scope": scope}
    assert writer.client.post("/api/2.0/secrets/scopes/delete", json=delete).status_code == 403
    assert owner.client.post("/api/2.0/secrets/scopes/delete", json=delete).is_success


def test_a_deleted_user_leaves_no_grant_for_a_new_user_of_that_name(
    api: httpx.Client, server: BerthServer
) -> None:
    name, model = unique("gone"), unique("kept")
    user_id, client = make_user(api, server, name)
    client.close()
    register(api, model, ECHO)
    path = f"/api/2.0/permissions/registered-models/{model}"
    grant = [{"user_name": name, "permission_level": "CAN_MANAGE"}]
    assert api.patch(path, json={"access_control_list": grant}).is_success
    assert api.delete(f"/api/2.0/preview/scim/v2/Users/{user_id}").is_success
    _, again = make_user(api, server, name)
    with again:
        assert again.get(f"/api/2.0/models/{model}").status_code == 403
    listed = api.get(path).json()["access_control_list"]
    assert name not in [entry.get("user_name") for entry in listed]
    assert "admin" in [entry.get("user_name") for entry in listed], "the creator's grant stays"
