"""The serving-endpoints control plane over HTTP: what each route stores and answers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from berth.api.endpoint_config import QUEUED
from tests.support.deploy import (
    ECHO,
    FAKES,
    register_model,
    requested,
    unique,
    wait_ready,
    wait_settled,
)
from tests.support.secrets import ensure_referenced_secrets
from tests.support.servers import BerthServer

pytestmark = [pytest.mark.integration, pytest.mark.stores("sqlite", "postgresql")]

BASE = "/api/2.0/serving-endpoints"
CREATING = {"deployment": "DEPLOYMENT_CREATING", "deployment_state_message": QUEUED}
ONE_READY = {"deployment": "DEPLOYMENT_READY", "deployment_state_message": "1/1 replicas ready."}
ABORTED = {
    "deployment": "DEPLOYMENT_ABORTED",
    "deployment_state_message": "The update was cancelled.",
}


@pytest.fixture(autouse=True)
def _referenced_secrets(api: httpx.Client) -> None:
    ensure_referenced_secrets(api)


@pytest.fixture(scope="module")
def model(server: BerthServer) -> Iterator[str]:
    """Two versions of the echo model."""
    with server.client() as client:
        yield register_model(client, ECHO, ECHO)


@pytest.fixture(scope="module")
def slow_model(server: BerthServer) -> Iterator[str]:
    """Version 1 loads at once, version 2 takes minutes: an update to it stays in progress."""
    with server.client() as client:
        yield register_model(client, ECHO, FAKES / "slow_load", prefix="slow")


@pytest.fixture
def name(api: httpx.Client) -> Iterator[str]:
    endpoint_name = unique("ep")
    yield endpoint_name
    api.delete(f"{BASE}/{endpoint_name}")  # stops its replicas, sparing the tests after


def create(api: httpx.Client, payload: dict[str, Any], path: str = BASE) -> dict[str, Any]:
    response = api.post(path, json=payload)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def put_config(api: httpx.Client, name: str, config: dict[str, Any]) -> dict[str, Any]:
    response = api.put(f"{BASE}/{name}/config", json=config)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def get(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.get(f"{BASE}/{name}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def serving(model: str, version: str) -> dict[str, Any]:
    return {"served_entities": [{"entity_name": model, "entity_version": version}]}


def event_types(api: httpx.Client, name: str) -> list[tuple[str, int | None]]:
    events = api.get(f"{BASE}/{name}/events").json()["events"]
    return [(e["type"], e["config_version"]) for e in events]


def external_chat(model_id: str = "gpt-4o") -> dict[str, Any]:
    return {
        "external_model": {
            "name": model_id,
            "provider": "openai",
            "task": "llm/v1/chat",
            "openai_config": {"openai_api_key_plaintext": "sk-secret-value"},
        }
    }


def test_create_answers_a_pending_config_that_the_controller_promotes(
    api: httpx.Client, model: str, name: str
) -> None:
    entity = {"entity_name": model, "entity_version": "1"}
    created = create(api, {"name": name, "config": {"name": name, "served_entities": [entity]}})

    assert created["name"] == name
    assert re.fullmatch(r"[0-9a-f]{32}", created["id"])
    assert created["state"] == {"ready": "NOT_READY", "config_update": "IN_PROGRESS"}
    assert created["creator"] == "admin"
    assert created["creation_timestamp"] == created["last_updated_timestamp"] > 0
    assert created["permission_level"] == "CAN_MANAGE"
    assert created["route_optimized"] is False
    assert created["tags"] == []
    assert "config" not in created
    pending = created["pending_config"]
    assert pending["config_version"] == 1
    assert pending["start_time"] == created["creation_timestamp"]
    [entity_out] = pending["served_entities"]
    assert entity_out == {
        "name": f"{model}-1",
        "entity_name": model,
        "entity_version": "1",
        "workload_size": "Small",
        "workload_type": "CPU",
        "scale_to_zero_enabled": False,
        "creator": "admin",
        "creation_timestamp": created["creation_timestamp"],
        "state": CREATING,
    }
    assert pending["served_models"][0]["model_name"] == model
    assert pending["served_models"][0]["model_version"] == "1"
    assert pending["traffic_config"] == {
        "routes": [
            {
                "served_entity_name": f"{model}-1",
                "served_model_name": f"{model}-1",
                "traffic_percentage": 100,
            }
        ]
    }

    promoted = wait_ready(api, name)

    assert promoted["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    assert "pending_config" not in promoted
    assert promoted["config"]["served_entities"][0]["state"] == ONE_READY
    assert promoted["last_updated_timestamp"] > created["last_updated_timestamp"]
    version_1 = {key: value for key, value in pending.items() if key != "start_time"}
    expected = {key: value for key, value in created.items() if key != "pending_config"}
    expected.update(
        config=version_1,
        state=promoted["state"],
        last_updated_timestamp=promoted["last_updated_timestamp"],
    )
    assert requested(promoted) == requested(expected)


def test_served_model_logs_are_the_tail_of_what_its_replicas_printed(
    api: httpx.Client, model: str, name: str
) -> None:
    create(api, {"name": name, "config": serving(model, "1")})
    wait_ready(api, name)

    response = api.get(f"{BASE}/{name}/served-models/{model}-1/logs")

    assert response.status_code == 200, response.text
    logs = response.json()["logs"]
    assert logs.startswith(f"==> replica {name}.{model}-1.")
    assert "(READY) <==" in logs
    assert "listening on /" in logs
    unknown = api.get(f"{BASE}/{name}/served-models/nope/logs")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": f"Endpoint '{name}' has no served entity named 'nope'; it has: {model}-1.",
    }


def test_both_slash_forms_create_and_list_without_redirects(
    api: httpx.Client, model: str, name: str
) -> None:
    entity = {"entity_name": model, "entity_version": "1"}
    create(api, {"name": name, "config": {"served_entities": [entity]}}, path=BASE + "/")
    wait_ready(api, name)
    for path in (BASE, BASE + "/"):
        response = api.get(path)
        assert response.status_code == 200
        [listed] = [e for e in response.json()["endpoints"] if e["name"] == name]
        assert listed["config"] == {
            "served_entities": [
                {"name": f"{model}-1", "entity_name": model, "entity_version": "1"}
            ],
            "served_models": [{"name": f"{model}-1", "model_name": model, "model_version": "1"}],
        }
        assert listed["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
        assert "pending_config" not in listed


def test_list_of_a_fresh_server_is_empty(make_server: Callable[..., BerthServer]) -> None:
    with make_server().client() as client:
        for path in (BASE, BASE + "/"):
            assert client.get(path).json() == {"endpoints": []}


def test_every_given_field_is_stored_and_echoed(api: httpx.Client, model: str, name: str) -> None:
    entities = [
        {
            "name": "blue",
            "entity_name": model,
            "entity_version": "1",
            "workload_size": "Medium",
            "workload_type": "CPU_MEDIUM",
            "scale_to_zero_enabled": True,
            "environment_vars": {"TOKEN": "{{secrets/team/token}}", "LEVEL": "debug"},
            "instance_profile_arn": "arn:aws:iam::1:instance-profile/x",
        },
        {
            "name": "green",
            "entity_name": model,
            "entity_version": "2",
            "min_provisioned_concurrency": 4,
            "max_provisioned_concurrency": 8,
        },
    ]
    routes = [
        {"served_entity_name": "blue", "traffic_percentage": 80},
        {"served_model_name": "green", "traffic_percentage": 20},
    ]
    payload = {
        "name": name,
        "config": {
            "served_entities": entities,
            "traffic_config": {"routes": routes},
            "auto_capture_config": {"catalog_name": "main", "enabled": True},
        },
        "tags": [{"key": "team", "value": "ml"}, {"key": "bare"}],
        "description": "two colours",
        "budget_policy_id": "policy-1",
        "route_optimized": True,
        "email_notifications": {"on_update_failure": ["ops@example.com"]},
        "telemetry_config": {"enabled_telemetry_features": ["TELEMETRY_FEATURE_LOGS"]},
    }
    created = create(api, payload)
    pending = created["pending_config"]
    blue, green = pending["served_entities"]
    assert {k: blue[k] for k in entities[0]} == entities[0]
    assert {k: green[k] for k in entities[1]} == entities[1]
    assert "workload_size" not in green
    assert [r["traffic_percentage"] for r in pending["traffic_config"]["routes"]] == [80, 20]
    assert pending["traffic_config"]["routes"][1]["served_entity_name"] == "green"
    assert pending["auto_capture_config"] == {"catalog_name": "main", "enabled": True}
    for key in ("tags", "description", "budget_policy_id", "route_optimized"):
        assert created[key] == payload[key]
    assert created["email_notifications"] == payload["email_notifications"]
    assert created["telemetry_config"] == payload["telemetry_config"]

    promoted = wait_ready(api, name)

    version_1 = {key: value for key, value in pending.items() if key != "start_time"}
    assert requested(promoted)["config"] == requested({**created, "config": version_1})["config"]
    assert [
        e["state"]["deployment_state_message"] for e in promoted["config"]["served_entities"]
    ] == [
        "1/1 replicas ready.",  # Medium scales 0-4 with scale to zero: idle, one runs
        "1/1 replicas ready.",  # concurrency 4-8: one or two replicas
    ]
    assert [
        (e["current_replicas"], e["desired_replicas"])
        for e in promoted["config"]["served_entities"]
    ] == [(1, 1), (1, 1)]
    for key in ("tags", "description", "budget_policy_id", "route_optimized"):
        assert promoted[key] == payload[key]
    assert promoted["email_notifications"] == payload["email_notifications"]
    assert promoted["telemetry_config"] == payload["telemetry_config"]


def test_served_models_are_read_as_served_entities(
    api: httpx.Client, model: str, name: str
) -> None:
    served_model = {"model_name": model, "model_version": "2", "scale_to_zero_enabled": True}
    created = create(api, {"name": name, "config": {"served_models": [served_model]}})
    [entity] = created["pending_config"]["served_entities"]
    assert (entity["name"], entity["entity_name"], entity["entity_version"]) == (
        f"{model}-2",
        model,
        "2",
    )
    [mirror] = created["pending_config"]["served_models"]
    assert (mirror["model_name"], mirror["scale_to_zero_enabled"]) == (model, True)


def test_external_model_endpoint_is_promoted_without_replicas_and_never_echoes_plaintext(
    api: httpx.Client, name: str
) -> None:
    secret_ref = external_chat("gpt-4o.mini:2024")
    secret_ref["external_model"]["openai_config"] = {"openai_api_key": "{{secrets/llm/openai}}"}
    plaintext = external_chat("gpt-4o")
    routes = [
        {"served_entity_name": "gpt-4o-mini-2024", "traffic_percentage": 50},
        {"served_entity_name": "gpt-4o", "traffic_percentage": 50},
    ]
    config = {"served_entities": [secret_ref, plaintext], "traffic_config": {"routes": routes}}
    response = api.post(BASE, json={"name": name, "config": config})
    assert response.status_code == 200, response.text
    created = response.json()

    assert created["state"] == {"ready": "NOT_READY", "config_update": "IN_PROGRESS"}
    assert created["task"] == "llm/v1/chat"
    assert "config" not in created
    assert [e["state"] for e in created["pending_config"]["served_entities"]] == [CREATING] * 2

    promoted = wait_ready(api, name, timeout=10)

    assert "pending_config" not in promoted
    by_ref, by_plaintext = promoted["config"]["served_entities"]
    assert by_ref["name"] == "gpt-4o-mini-2024"
    assert by_ref["external_model"]["openai_config"] == {"openai_api_key": "{{secrets/llm/openai}}"}
    sealed = f"{{{{secrets/berth-endpoint-{promoted['id']}/v1.gpt-4o.openai_api_key}}}}"
    assert by_plaintext["external_model"]["openai_config"] == {"openai_api_key": sealed}
    ready = {"deployment": "DEPLOYMENT_READY", "deployment_state_message": ""}
    assert [by_ref["state"], by_plaintext["state"]] == [ready, ready]
    assert "served_models" not in promoted["config"]
    assert "workload_size" not in by_ref
    for text in (response.text, api.get(f"{BASE}/{name}").text, api.get(BASE).text):
        assert "sk-secret-value" not in text
        assert "_plaintext" not in text


def test_config_update_is_stored_as_pending_and_a_second_one_conflicts(
    api: httpx.Client, slow_model: str, name: str
) -> None:
    first = serving(slow_model, "1")
    create(api, {"name": name, "config": first})
    settled = wait_ready(api, name)

    updated = put_config(api, name, serving(slow_model, "2"))

    assert updated["name"] == name
    assert updated["state"] == {"ready": "READY", "config_update": "IN_PROGRESS"}
    assert updated["config"] == settled["config"]
    pending = updated["pending_config"]
    assert pending["config_version"] == 2
    assert pending["start_time"] == updated["last_updated_timestamp"]
    assert updated["last_updated_timestamp"] > settled["last_updated_timestamp"]
    assert pending["served_entities"][0]["name"] == f"{slow_model}-2"
    assert pending["served_entities"][0]["state"] == CREATING
    assert pending["traffic_config"]["routes"][0]["served_entity_name"] == f"{slow_model}-2"
    assert requested(get(api, name)) == requested(updated)

    again = api.put(f"{BASE}/{name}/config", json=first)
    assert again.status_code == 409
    assert again.json() == {
        "error_code": "RESOURCE_CONFLICT",
        "message": f"Endpoint '{name}' has a config update in progress (version 2); "
        "wait for it or cancel it.",
    }
    assert requested(get(api, name)) == requested(updated)


def test_a_new_endpoint_is_updating_until_its_first_config_is_ready(
    api: httpx.Client, slow_model: str, name: str
) -> None:
    created = create(api, {"name": name, "config": serving(slow_model, "2")})

    refused = api.put(f"{BASE}/{name}/config", json=serving(slow_model, "1"))

    assert refused.status_code == 409
    assert refused.json()["message"] == (
        f"Endpoint '{name}' has a config update in progress (version 1); wait for it or cancel it."
    )
    assert requested(get(api, name)) == requested(created)
    cancelled = api.post(f"{BASE}/{name}/config/cancel").json()
    assert cancelled["state"] == {"ready": "NOT_READY", "config_update": "UPDATE_CANCELED"}
    assert "config" not in cancelled
    assert cancelled["pending_config"]["served_entities"][0]["state"] == ABORTED


def test_cancel_abandons_the_update_and_the_current_config_keeps_serving(
    api: httpx.Client, slow_model: str, name: str
) -> None:
    create(api, {"name": name, "config": serving(slow_model, "1")})
    settled = wait_ready(api, name)
    put_config(api, name, serving(slow_model, "2"))

    response = api.post(f"{BASE}/{name}/config/cancel")

    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["state"] == {"ready": "READY", "config_update": "UPDATE_CANCELED"}
    assert cancelled["config"] == settled["config"]
    assert cancelled["pending_config"]["config_version"] == 2
    [aborted] = cancelled["pending_config"]["served_entities"]
    assert (aborted["name"], aborted["state"]) == (f"{slow_model}-2", ABORTED)
    assert requested(get(api, name)) == requested(cancelled)
    assert event_types(api, name)[-1] == ("UPDATE_CANCELED", 2)
    again = api.post(f"{BASE}/{name}/config/cancel")
    assert again.status_code == 409
    assert again.json() == {
        "error_code": "RESOURCE_CONFLICT",
        "message": f"Endpoint '{name}' has no config update in progress to cancel.",
    }
    assert requested(get(api, name)) == requested(cancelled)

    put_config(api, name, serving(slow_model, "1"))
    assert wait_ready(api, name)["config"]["config_version"] == 2


def test_a_model_that_fails_to_load_fails_the_first_update(api: httpx.Client, name: str) -> None:
    broken = register_model(api, FAKES / "failing_load", prefix="broken")
    create(api, {"name": name, "config": serving(broken, "1")})

    failed = wait_settled(api, name)

    assert failed["state"] == {"ready": "NOT_READY", "config_update": "UPDATE_FAILED"}
    assert "config" not in failed
    state = failed["pending_config"]["served_entities"][0]["state"]
    assert state["deployment"] == "DEPLOYMENT_FAILED"
    assert "weights file model.bin is corrupt" in state["deployment_state_message"]
    assert failed["last_updated_timestamp"] > failed["creation_timestamp"]
    [*_, last] = api.get(f"{BASE}/{name}/events").json()["events"]
    assert (last["type"], last["config_version"]) == ("UPDATE_FAILED", 1)
    assert last["message"].endswith("No earlier config exists, so the endpoint is not serving.")


def test_tags_patch_answers_the_full_resulting_list(
    api: httpx.Client, model: str, name: str
) -> None:
    tags = [{"key": "team", "value": "ml"}, {"key": "env", "value": "dev"}]
    create(api, {"name": name, "config": serving(model, "1"), "tags": tags})

    patch = {
        "add_tags": [{"key": "env", "value": "prod"}, {"key": "tier"}],
        "delete_tags": ["team"],
    }
    response = api.patch(f"{BASE}/{name}/tags", json=patch)

    expected = [{"key": "env", "value": "prod"}, {"key": "tier"}]
    assert response.json() == {"tags": expected}
    assert get(api, name)["tags"] == expected


def test_rate_limits_gateway_and_notifications_are_stored_and_echoed(
    api: httpx.Client, name: str
) -> None:
    create(api, {"name": name, "config": {"served_entities": [external_chat()]}})
    limits = {"rate_limits": [{"calls": 10, "renewal_period": "minute", "key": "user"}]}
    assert api.put(f"{BASE}/{name}/rate-limits", json=limits).json() == limits
    unkeyed = api.put(
        f"{BASE}/{name}/rate-limits",
        json={"rate_limits": [{"calls": 5, "renewal_period": "minute"}]},
    )
    assert unkeyed.json()["rate_limits"][0]["key"] == "endpoint"

    gateway = {
        "rate_limits": [{"calls": 100, "key": "user", "renewal_period": "minute"}],
        "guardrails": {"input": {"invalid_keywords": ["secret"], "pii": {"behavior": "BLOCK"}}},
        "usage_tracking_config": {"enabled": True},
    }
    assert api.put(f"{BASE}/{name}/ai-gateway", json=gateway).json() == gateway
    assert get(api, name)["ai_gateway"] == gateway
    assert api.put(f"{BASE}/{name}/ai-gateway", json={}).json() == {}
    assert "ai_gateway" not in get(api, name)

    notifications = {"email_notifications": {"on_update_success": ["a@example.com"]}}
    answer = api.patch(f"{BASE}/{name}/notifications", json=notifications).json()
    assert answer == {"name": name, **notifications}
    assert get(api, name)["email_notifications"] == {"on_update_success": ["a@example.com"]}


def test_events_tell_each_change_in_order(api: httpx.Client, model: str, name: str) -> None:
    create(api, {"name": name, "config": serving(model, "1")})
    wait_ready(api, name)
    api.patch(f"{BASE}/{name}/tags", json={"add_tags": [{"key": "team", "value": "ml"}]})
    api.put(f"{BASE}/{name}/ai-gateway", json={"usage_tracking_config": {"enabled": True}})
    put_config(api, name, serving(model, "2"))
    wait_ready(api, name)

    events = api.get(f"{BASE}/{name}/events").json()["events"]

    assert [(e["type"], e["config_version"]) for e in events] == [
        ("ENDPOINT_CREATED", 1),
        ("CONFIG_UPDATED", 1),
        ("TAGS_CHANGED", None),
        ("AI_GATEWAY_CHANGED", None),
        ("CONFIG_UPDATE_REQUESTED", 2),
        ("CONFIG_UPDATED", 2),
    ]
    assert events[0]["message"] == (
        f"Endpoint created by admin with config version 1: served entities {model}-1 "
        f"(Small, CPU); traffic {model}-1 100%"
    )
    assert events[1]["message"] == "Config version 1 is ready and now serves all traffic."
    assert events[2]["message"] == "Tags changed by admin: set team=ml"
    assert events[3]["message"] == "AI gateway set by admin: usage_tracking_config"
    assert events[4]["message"] == (
        f"Config version 2 requested by admin: served entities {model}-2 (Small, CPU); "
        f"traffic {model}-2 100%"
    )
    assert events[5]["message"] == "Config version 2 is ready and now serves all traffic."
    timestamps = [e["timestamp"] for e in events]
    assert timestamps == sorted(timestamps)


def test_delete_answers_empty_json_and_the_endpoint_is_gone(
    api: httpx.Client, model: str, name: str
) -> None:
    config = serving(model, "1")
    first = create(api, {"name": name, "config": config})

    response = api.delete(f"{BASE}/{name}")

    assert (response.status_code, response.json()) == (200, {})
    assert api.get(f"{BASE}/{name}").status_code == 404
    assert name not in [e["name"] for e in api.get(BASE).json()["endpoints"]]
    assert api.get(f"{BASE}/{name}/events").status_code == 404
    recreated = create(api, {"name": name, "config": config})
    assert recreated["id"] != first["id"]
    events = api.get(f"{BASE}/{name}/events").json()["events"]
    assert [e["timestamp"] for e in events if e["type"] == "ENDPOINT_CREATED"] == [
        recreated["creation_timestamp"]
    ]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("DELETE", "", None),
        ("PUT", "/config", {"served_entities": [external_chat()]}),
        ("POST", "/config/cancel", None),
        ("GET", "/served-models/any/logs", None),
        ("PATCH", "/tags", {"add_tags": [{"key": "k"}]}),
        ("PUT", "/rate-limits", {"rate_limits": []}),
        ("PUT", "/ai-gateway", {}),
        ("PATCH", "/notifications", {"email_notifications": {}}),
        ("GET", "/events", None),
    ],
)
def test_unknown_endpoint_is_resource_does_not_exist(
    api: httpx.Client, name: str, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    response = api.request(method, f"{BASE}/{name}{suffix}", json=body)
    assert response.status_code == 404
    assert response.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": f"Endpoint with name '{name}' does not exist.",
    }
