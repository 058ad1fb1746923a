"""The serving-endpoints control plane over HTTP: what each route stores and answers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import BerthServer

BASE = "/api/2.0/serving-endpoints"
ECHO_ARTIFACT = Path(__file__).parents[1] / "fakes" / "endpoint_models" / "echo"
AWAITING = "Waiting for the controller to start replicas."


def register_model(client: httpx.Client, versions: int) -> str:
    """A registered model with ``versions`` versions, made through the models REST API."""
    name = f"model-{uuid.uuid4().hex[:8]}"
    assert client.post("/api/2.0/models", json={"name": name}).status_code == 200
    for _ in range(versions):
        response = client.post(
            f"/api/2.0/models/{name}/versions", json={"source": str(ECHO_ARTIFACT)}
        )
        assert response.status_code == 200, response.text
    return name


@pytest.fixture(scope="module")
def model(server: BerthServer) -> Iterator[str]:
    with server.client() as client:
        yield register_model(client, versions=2)


@pytest.fixture
def name() -> str:
    return f"ep-{uuid.uuid4().hex[:10]}"


def create(api: httpx.Client, payload: dict[str, Any], path: str = BASE) -> dict[str, Any]:
    response = api.post(path, json=payload)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def external_chat(model_id: str = "gpt-4o") -> dict[str, Any]:
    return {
        "external_model": {
            "name": model_id,
            "provider": "openai",
            "task": "llm/v1/chat",
            "openai_config": {"openai_api_key_plaintext": "sk-secret-value"},
        }
    }


def test_create_answers_the_detailed_endpoint_with_defaults(
    api: httpx.Client, model: str, name: str
) -> None:
    entity = {"entity_name": model, "entity_version": "1"}
    created = create(api, {"name": name, "config": {"name": name, "served_entities": [entity]}})

    assert created["name"] == name
    assert re.fullmatch(r"[0-9a-f]{32}", created["id"])
    assert created["state"] == {"ready": "NOT_READY", "config_update": "NOT_UPDATING"}
    assert created["creator"] == "admin"
    assert created["creation_timestamp"] == created["last_updated_timestamp"] > 0
    assert created["permission_level"] == "CAN_MANAGE"
    assert created["route_optimized"] is False
    assert created["tags"] == []
    assert "pending_config" not in created
    config = created["config"]
    assert config["config_version"] == 1
    [served] = config["served_entities"]
    assert served == {
        "name": f"{model}-1",
        "entity_name": model,
        "entity_version": "1",
        "workload_size": "Small",
        "workload_type": "CPU",
        "scale_to_zero_enabled": False,
        "creator": "admin",
        "creation_timestamp": created["creation_timestamp"],
        "state": {"deployment": "DEPLOYMENT_CREATING", "deployment_state_message": AWAITING},
    }
    assert config["served_models"][0]["model_name"] == model
    assert config["served_models"][0]["model_version"] == "1"
    assert config["traffic_config"] == {
        "routes": [
            {
                "served_entity_name": f"{model}-1",
                "served_model_name": f"{model}-1",
                "traffic_percentage": 100,
            }
        ]
    }
    assert api.get(f"{BASE}/{name}").json() == created


def test_both_slash_forms_create_and_list_without_redirects(
    api: httpx.Client, model: str, name: str
) -> None:
    entity = {"entity_name": model, "entity_version": "1"}
    create(api, {"name": name, "config": {"served_entities": [entity]}}, path=BASE + "/")
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
        assert listed["state"] == {"ready": "NOT_READY", "config_update": "NOT_UPDATING"}
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
            "workload_type": "GPU_SMALL",
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
    blue, green = created["config"]["served_entities"]
    assert {k: blue[k] for k in entities[0]} == entities[0]
    assert {k: green[k] for k in entities[1]} == entities[1]
    assert "workload_size" not in green
    assert [r["traffic_percentage"] for r in created["config"]["traffic_config"]["routes"]] == [
        80,
        20,
    ]
    assert created["config"]["traffic_config"]["routes"][1]["served_entity_name"] == "green"
    assert created["config"]["auto_capture_config"] == {"catalog_name": "main", "enabled": True}
    for key in ("tags", "description", "budget_policy_id", "route_optimized"):
        assert created[key] == payload[key]
    assert created["email_notifications"] == payload["email_notifications"]
    assert created["telemetry_config"] == payload["telemetry_config"]
    assert api.get(f"{BASE}/{name}").json() == created


def test_served_models_are_read_as_served_entities(
    api: httpx.Client, model: str, name: str
) -> None:
    served_model = {"model_name": model, "model_version": "2", "scale_to_zero_enabled": True}
    created = create(api, {"name": name, "config": {"served_models": [served_model]}})
    [entity] = created["config"]["served_entities"]
    assert (entity["name"], entity["entity_name"], entity["entity_version"]) == (
        f"{model}-2",
        model,
        "2",
    )
    [mirror] = created["config"]["served_models"]
    assert (mirror["model_name"], mirror["scale_to_zero_enabled"]) == (model, True)


def test_external_model_endpoint_is_ready_and_never_echoes_plaintext(
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
    created = create(api, {"name": name, "config": config})

    assert created["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    assert created["task"] == "llm/v1/chat"
    by_ref, by_plaintext = created["config"]["served_entities"]
    assert by_ref["name"] == "gpt-4o-mini-2024"
    assert by_ref["external_model"]["openai_config"] == {"openai_api_key": "{{secrets/llm/openai}}"}
    assert by_plaintext["external_model"]["openai_config"] == {}
    assert by_ref["state"] == {"deployment": "DEPLOYMENT_READY", "deployment_state_message": ""}
    assert "served_models" not in created["config"]
    assert "workload_size" not in by_ref
    for text in (api.get(f"{BASE}/{name}").text, api.get(BASE).text):
        assert "sk-secret-value" not in text
        assert "_plaintext" not in text


def test_config_update_is_stored_as_pending_and_a_second_one_conflicts(
    api: httpx.Client, model: str, name: str
) -> None:
    first = {"served_entities": [{"entity_name": model, "entity_version": "1"}]}
    created = create(api, {"name": name, "config": first})
    update = {"served_entities": [{"entity_name": model, "entity_version": "2"}]}

    response = api.put(f"{BASE}/{name}/config", json=update)

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["name"] == name
    assert updated["state"] == {"ready": "NOT_READY", "config_update": "IN_PROGRESS"}
    assert updated["config"] == created["config"]
    pending = updated["pending_config"]
    assert pending["config_version"] == 2
    assert pending["start_time"] == updated["last_updated_timestamp"]
    assert pending["served_entities"][0]["name"] == f"{model}-2"
    assert pending["traffic_config"]["routes"][0]["served_entity_name"] == f"{model}-2"
    assert api.get(f"{BASE}/{name}").json() == updated

    again = api.put(f"{BASE}/{name}/config", json=first)
    assert again.status_code == 409
    assert again.json() == {
        "error_code": "RESOURCE_CONFLICT",
        "message": f"Endpoint '{name}' has a config update in progress (version 2); "
        "wait for it or cancel it.",
    }
    assert api.get(f"{BASE}/{name}").json() == updated


def test_tags_patch_answers_the_full_resulting_list(
    api: httpx.Client, model: str, name: str
) -> None:
    config = {"served_entities": [{"entity_name": model, "entity_version": "1"}]}
    tags = [{"key": "team", "value": "ml"}, {"key": "env", "value": "dev"}]
    create(api, {"name": name, "config": config, "tags": tags})

    patch = {
        "add_tags": [{"key": "env", "value": "prod"}, {"key": "tier"}],
        "delete_tags": ["team"],
    }
    response = api.patch(f"{BASE}/{name}/tags", json=patch)

    expected = [{"key": "env", "value": "prod"}, {"key": "tier"}]
    assert response.json() == {"tags": expected}
    assert api.get(f"{BASE}/{name}").json()["tags"] == expected


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
        "guardrails": {"input": {"safety": True, "pii": {"behavior": "BLOCK"}}},
        "usage_tracking_config": {"enabled": True},
    }
    assert api.put(f"{BASE}/{name}/ai-gateway", json=gateway).json() == gateway
    assert api.get(f"{BASE}/{name}").json()["ai_gateway"] == gateway
    assert api.put(f"{BASE}/{name}/ai-gateway", json={}).json() == {}
    assert "ai_gateway" not in api.get(f"{BASE}/{name}").json()

    notifications = {"email_notifications": {"on_update_success": ["a@example.com"]}}
    answer = api.patch(f"{BASE}/{name}/notifications", json=notifications).json()
    assert answer == {"name": name, **notifications}
    assert api.get(f"{BASE}/{name}").json()["email_notifications"] == {
        "on_update_success": ["a@example.com"]
    }


def test_events_tell_each_change_in_order(api: httpx.Client, model: str, name: str) -> None:
    config = {"served_entities": [{"entity_name": model, "entity_version": "1"}]}
    create(api, {"name": name, "config": config})
    api.patch(f"{BASE}/{name}/tags", json={"add_tags": [{"key": "team", "value": "ml"}]})
    api.put(f"{BASE}/{name}/ai-gateway", json={"usage_tracking_config": {"enabled": True}})
    update = {"served_entities": [{"entity_name": model, "entity_version": "2"}]}
    api.put(f"{BASE}/{name}/config", json=update)

    events = api.get(f"{BASE}/{name}/events").json()["events"]

    assert [(e["type"], e["config_version"]) for e in events] == [
        ("ENDPOINT_CREATED", 1),
        ("TAGS_CHANGED", None),
        ("AI_GATEWAY_CHANGED", None),
        ("CONFIG_UPDATE_REQUESTED", 2),
    ]
    assert events[0]["message"] == (
        f"Endpoint created by admin with config version 1: served entities {model}-1 "
        f"(Small, CPU); traffic {model}-1 100%"
    )
    assert events[1]["message"] == "Tags changed by admin: set team=ml"
    assert events[2]["message"] == "AI gateway set by admin: usage_tracking_config"
    assert events[3]["message"] == (
        f"Config version 2 requested by admin: served entities {model}-2 (Small, CPU); "
        f"traffic {model}-2 100%"
    )
    timestamps = [e["timestamp"] for e in events]
    assert timestamps == sorted(timestamps)


def test_delete_answers_empty_json_and_the_endpoint_is_gone(
    api: httpx.Client, model: str, name: str
) -> None:
    config = {"served_entities": [{"entity_name": model, "entity_version": "1"}]}
    first = create(api, {"name": name, "config": config})

    response = api.delete(f"{BASE}/{name}")

    assert (response.status_code, response.json()) == (200, {})
    assert api.get(f"{BASE}/{name}").status_code == 404
    assert name not in [e["name"] for e in api.get(BASE).json()["endpoints"]]
    assert api.get(f"{BASE}/{name}/events").status_code == 404
    recreated = create(api, {"name": name, "config": config})
    events = api.get(f"{BASE}/{name}/events").json()["events"]
    assert [event["type"] for event in events] == ["ENDPOINT_CREATED"]
    assert recreated["id"] != first["id"]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("DELETE", "", None),
        ("PUT", "/config", {"served_entities": [external_chat()]}),
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
