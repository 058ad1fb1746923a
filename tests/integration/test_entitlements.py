"""Who may run code is a permission: registering and deploying model versions takes the
run-model-code entitlement, granted by admins on users or groups (SCIM ``entitlements``)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.support.deploy import ECHO, entity, register, unique, upload_version
from tests.support.identity import RUN_MODEL_CODE, make_user
from tests.support.servers import BerthServer

pytestmark = [pytest.mark.integration, pytest.mark.stores("sqlite", "postgresql")]

SCIM = "/api/2.0/preview/scim/v2"


def register_as(client: httpx.Client, model: str) -> httpx.Response:
    return upload_version(client, model, ECHO)


def deploy_as(client: httpx.Client, model: str) -> httpx.Response:
    config = {"served_entities": [entity(model, "1")]}
    return client.post("/api/2.0/serving-endpoints", json={"name": unique("ent"), "config": config})


def unentitled_user_with_a_model(
    api: httpx.Client, server: BerthServer
) -> tuple[str, httpx.Client, str]:
    """(its SCIM id, a client acting as it, a model it created): a user who may not run code."""
    user_id, client = make_user(api, server, f"plain-{uuid.uuid4().hex[:6]}", entitled=False)
    model = unique("mine")
    assert client.post("/api/2.0/models", json={"name": model}).status_code == 200
    return user_id, client, model


def test_without_the_entitlement_registering_and_deploying_are_refused(
    api: httpx.Client, server: BerthServer
) -> None:
    user_id, plain, model = unentitled_user_with_a_model(api, server)
    with contextlib.closing(plain):
        refused = register_as(plain, model)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error_code"] == "PERMISSION_DENIED"
        assert "run-model-code" in refused.json()["message"]
        # A version an admin registered: the user may read it, not deploy it.
        shared = unique("shared")
        register(api, shared, ECHO)
        grant = {
            "access_control_list": [
                {"user_name": plain_name(api, user_id), "permission_level": "CAN_READ"}
            ]
        }
        assert api.patch(f"/api/2.0/permissions/registered-models/{shared}", json=grant).is_success
        refused = deploy_as(plain, shared)
        assert refused.status_code == 403, refused.text
        assert "run-model-code" in refused.json()["message"]

        # Granted on the user (SCIM PATCH), both work.
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "entitlements", "value": [RUN_MODEL_CODE]}],
        }
        granted = api.patch(f"{SCIM}/Users/{user_id}", json=patch)
        assert granted.status_code == 200, granted.text
        assert granted.json()["entitlements"] == [RUN_MODEL_CODE]
        assert register_as(plain, model).status_code == 200
        assert deploy_as(plain, shared).status_code == 200

        # Taken away again: refused again.
        remove = {
            "Operations": [{"op": "remove", "path": 'entitlements[value eq "run-model-code"]'}]
        }
        assert api.patch(f"{SCIM}/Users/{user_id}", json=remove).json()["entitlements"] == []
        assert register_as(plain, model).status_code == 403


def plain_name(api: httpx.Client, user_id: str) -> str:
    return str(api.get(f"{SCIM}/Users/{user_id}").json()["userName"])


def test_a_group_holding_the_entitlement_gives_it_to_its_members(
    api: httpx.Client, server: BerthServer
) -> None:
    user_id, member, model = unentitled_user_with_a_model(api, server)
    with contextlib.closing(member):
        assert register_as(member, model).status_code == 403
        group = {
            "displayName": unique("deployers"),
            "members": [{"value": user_id}],
            "entitlements": [RUN_MODEL_CODE],
        }
        made = api.post(f"{SCIM}/Groups", json=group)
        assert made.status_code == 200, made.text
        assert made.json()["entitlements"] == [RUN_MODEL_CODE]
        assert register_as(member, model).status_code == 200


def test_an_unknown_entitlement_is_refused_by_name(api: httpx.Client) -> None:
    made = api.post(
        f"{SCIM}/Users", json={"userName": unique("u"), "entitlements": [{"value": "root"}]}
    )
    assert made.status_code == 400, made.text
    assert "run-model-code" in made.json()["message"]


def test_a_server_open_to_all_needs_no_entitlement(
    make_server: Callable[..., BerthServer],
) -> None:
    server = make_server(BERTH_ACCESS__CODE_EXECUTION="all")
    with server.client() as api:
        _, plain = make_user(api, server, "laptop-user", entitled=False)
        with plain:
            model = unique("open")
            assert plain.post("/api/2.0/models", json={"name": model}).status_code == 200
            assert register_as(plain, model).status_code == 200
