"""Usage tracking sums every request of a tracked endpoint off the request path; the audit
log records control-plane changes with who, what and the object before and after."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.cli import Cli
from tests.support.deploy import ECHO, FAKES, deploy, entity, register_model, unique, wait_ready
from tests.support.identity import make_user
from tests.support.net import wait_until
from tests.support.servers import BerthServer

pytestmark = [pytest.mark.integration, pytest.mark.stores("sqlite", "postgresql")]

TRACKED = {"usage_tracking_config": {"enabled": True}}


def usage(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    answer = client.get("/api/2.0/berth/usage", params=params)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["usage"]
    return rows


def test_usage_counts_requests_errors_and_tokens_by_endpoint_user_and_day(
    api: httpx.Client, server: BerthServer
) -> None:
    chat = deploy(api, FAKES / "chat_score", ai_gateway=TRACKED)
    untracked = deploy(api, ECHO)
    user_name = unique("caller")
    user_id, user = make_user(api, server, user_name)
    with user:
        endpoint_id = api.get(f"/api/2.0/serving-endpoints/{chat}").json()["id"]
        grant = [{"user_name": user_name, "permission_level": "CAN_QUERY"}]
        path = f"/api/2.0/permissions/serving-endpoints/{endpoint_id}"
        assert api.patch(path, json={"access_control_list": grant}).is_success
        body = {"messages": [{"role": "user", "content": "two words"}]}
        for _ in range(5):
            assert api.post(f"/serving-endpoints/{chat}/invocations", json=body).is_success
        wait_until(
            lambda: user.post(f"/serving-endpoints/{chat}/invocations", json=body).is_success,
            timeout=30,
            what="the user's grant to reach the data plane",
        )
        for _ in range(2):
            assert user.post(f"/serving-endpoints/{chat}/invocations", json=body).is_success
        broken = user.post(f"/serving-endpoints/{chat}/invocations", json={"messages": []})
        assert broken.status_code == 400
        assert api.post(f"/serving-endpoints/{untracked}/invocations", json={}).is_success

        def counted() -> bool:
            rows = usage(api, by="endpoint", endpoint=chat)
            return bool(rows) and rows[0]["requests"] == 9

        wait_until(counted, timeout=30, what="usage of 9 requests to be written")
        by_user = {r["principal"]: r for r in usage(api, by="principal", endpoint=chat)}
        assert by_user[server_admin(api)]["requests"] == 5
        assert by_user[user_name]["requests"] == 4 and by_user[user_name]["errors"] == 1
        assert by_user[user_name]["input_tokens"] == 3 * 2
        assert by_user[user_name]["output_tokens"] == 3 * 2
        (day,) = usage(api, by="endpoint,day", endpoint=chat)
        assert day["requests"] == 9 and len(day["day"]) == 10 and day["mean_latency_ms"] > 0
        assert usage(api, by="endpoint", endpoint=untracked) == []

        cli = Cli(server.url, server.token)
        (shown,) = cli.json("usage", "--by", "endpoint", "--endpoint", chat, "--since", "1h")
        assert shown == {**usage(api, by="endpoint", endpoint=chat)[0], "endpoint": chat}
        assert "requests" in cli.ok("usage", "--endpoint", chat)
        mine = usage(user, by="endpoint,principal")
        assert [(r["endpoint"], r["principal"]) for r in mine] == [(chat, user_name)]
        refused = user.get("/api/2.0/berth/usage", params={"by": "model"})
        assert refused.status_code == 400 and "endpoint, principal, day" in refused.text
        assert user_id


def server_admin(api: httpx.Client) -> str:
    me = api.get("/api/2.0/preview/scim/v2/Me")
    assert me.status_code == 200, me.text
    return str(me.json()["userName"])


def test_the_audit_log_records_who_changed_what(api: httpx.Client, server: BerthServer) -> None:
    name = deploy(api, ECHO)
    tags = {"add_tags": [{"key": "team", "value": "ml"}]}
    assert api.patch(f"/api/2.0/serving-endpoints/{name}/tags", json=tags).is_success
    assert api.put(f"/api/2.0/serving-endpoints/{name}/ai-gateway", json=TRACKED).is_success
    assert api.delete(f"/api/2.0/serving-endpoints/{name}").is_success

    entries = api.get(
        "/api/2.0/berth/audit", params={"object_type": "serving-endpoint", "object_id": name}
    ).json()["entries"]
    assert [e["action"] for e in entries] == [
        "serving-endpoints.delete",
        "serving-endpoints.put_ai_gateway",
        "serving-endpoints.patch_tags",
        "serving-endpoints.create",
    ]
    admin = server_admin(api)
    assert {e["actor"] for e in entries} == {admin}
    delete, gateway, tagged, created = entries
    assert gateway["before"] == {"ai_gateway": None} and gateway["after"] == {"ai_gateway": TRACKED}
    assert tagged["after"] == {"tags": [{"key": "team", "value": "ml"}]}
    assert created["after"]["served_entities"][0]["entity_name"] == name
    assert delete["before"]["config"]["served_entities"][0]["entity_name"] == name
    assert delete["timestamp"] >= created["timestamp"]

    cli = Cli(server.url, server.token)
    listed = cli.json("audit", "--id", name, "--type", "serving-endpoint", "--since", "1h")
    assert [e["action"] for e in listed] == [e["action"] for e in entries]
    user_name = unique("nosy")
    _, user = make_user(api, server, user_name)
    with user:
        refused = user.get("/api/2.0/berth/audit")
        assert refused.status_code == 403
        made = api.get("/api/2.0/berth/audit", params={"object_id": user_name}).json()["entries"]
        assert made and made[-1]["actor"] == admin


def test_a_new_endpoint_with_a_deleted_ones_name_inherits_nothing(
    api: httpx.Client, server: BerthServer
) -> None:
    """Payloads, access logs and usage are kept by endpoint id: deleted means gone."""
    name = unique("reborn")
    model = register_model(api)
    config = {
        "served_entities": [entity(model, "1")],
        "auto_capture_config": {"enabled": True},
    }
    body = {
        "name": name,
        "config": config,
        "ai_gateway": {"usage_tracking_config": {"enabled": True}},
    }
    for life in ("first", "second"):
        created = api.post("/api/2.0/serving-endpoints", json=body)
        assert created.status_code == 200, created.text
        wait_ready(api, name)
        if life == "second":
            break
        assert api.put(f"/api/2.0/serving-endpoints/{name}/logging", json={"access_log": True})
        wait_until(
            lambda: (
                api.post(f"/serving-endpoints/{name}/invocations", json={"x": 1}).is_success
                and bool(api.get(f"/api/2.0/serving-endpoints/{name}/access-logs").json()["logs"])
                and bool(api.get(f"/api/2.0/serving-endpoints/{name}/payloads").json()["payloads"])
                and bool(usage_of(api, name))
            ),
            timeout=30,
            what="the first endpoint's logs, payloads and usage",
        )
        assert api.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200
    assert api.get(f"/api/2.0/serving-endpoints/{name}/access-logs").json()["logs"] == ""
    assert api.get(f"/api/2.0/serving-endpoints/{name}/payloads").json()["payloads"] == []
    assert usage_of(api, name) == []


def usage_of(api: httpx.Client, name: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = api.get(
        "/api/2.0/berth/usage", params={"by": "endpoint", "endpoint": name}
    ).json()["usage"]
    return rows
