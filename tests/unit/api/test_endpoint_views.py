"""Rendering stored endpoints as Databricks JSON, and the event messages about them."""

from __future__ import annotations

from typing import Any

from berth.api import endpoint_events as events
from berth.api import endpoint_views as views
from berth.api.endpoint_config import normalise_config
from berth.api.schemas.endpoints import EndpointCoreConfigInput
from berth.core.endpoint_config import EndpointConfigDoc
from berth.core.states import ConfigUpdate, EndpointReady
from berth.store.endpoints import EndpointRecord
from tests.support.throughput import calibration


def document(
    entities: list[dict[str, Any]], version: int = 1, start_time: int | None = None
) -> EndpointConfigDoc:
    routes = {
        "routes": [{"served_entity_name": entities[0].get("name", "x"), "traffic_percentage": 100}]
    }
    config = EndpointCoreConfigInput.model_validate(
        {"served_entities": entities, "traffic_config": routes}
    )
    normalised = normalise_config(config)
    return normalised.document(version=version, creator="a", now_ms=5, start_time=start_time)


def record(config: EndpointConfigDoc, **fields: Any) -> EndpointRecord:
    values: dict[str, Any] = {
        "id": "0" * 32,
        "name": "ep",
        "creator": "a",
        "created_at": 5,
        "updated_at": 6,
        "description": "",
        "config": config,
        "config_version": config.config_version,
        "pending_config": None,
        "ready": EndpointReady.NOT_READY,
        "config_update": ConfigUpdate.NOT_UPDATING,
        "task": None,
        "tags": [],
        "ai_gateway": None,
        "rate_limits": None,
        "route_optimized": False,
        "email_notifications": None,
        "budget_policy_id": None,
        "telemetry_config": None,
    }
    return EndpointRecord(**{**values, **fields})


CUSTOM = {
    "name": "c",
    "external_model": {
        "name": "m",
        "provider": "custom",
        "task": "llm/v1/completions",
        "custom_provider_config": {
            "custom_provider_url": "https://x",
            "bearer_token_auth": {"token_plaintext": "secret-token"},
        },
    },
}


def test_plaintext_secrets_are_removed_at_any_depth() -> None:
    body = views.detailed(record(document([CUSTOM]), task="llm/v1/completions"), "CAN_MANAGE")
    [entity] = body["config"]["served_entities"]
    assert entity["external_model"]["custom_provider_config"] == {
        "custom_provider_url": "https://x",
        "bearer_token_auth": {},
    }
    assert "secret-token" not in str(body)
    assert "secret-token" not in str(views.summary(record(document([CUSTOM]))))
    assert body["task"] == "llm/v1/completions"


def test_registered_model_entities_get_a_served_models_mirror() -> None:
    entity = {
        "name": "e",
        "entity_name": "iris",
        "entity_version": "1",
        "burst_scaling_enabled": True,
    }
    body = views.detailed(record(document([entity])), "CAN_MANAGE")
    [served] = body["config"]["served_entities"]
    [mirror] = body["config"]["served_models"]
    assert "burst_scaling_enabled" not in served
    assert (mirror["model_name"], mirror["model_version"], mirror["state"]) == (
        "iris",
        "1",
        served["state"],
    )
    assert "entity_name" not in mirror
    assert body["config"]["traffic_config"]["routes"] == [
        {"served_entity_name": "e", "served_model_name": "e", "traffic_percentage": 100}
    ]


def test_pending_config_carries_its_start_time_and_summary_omits_it() -> None:
    entity = {"name": "e", "entity_name": "iris", "entity_version": "1"}
    pending = document([entity], version=2, start_time=9)
    stored = record(
        document([entity]), pending_config=pending, config_update=ConfigUpdate.IN_PROGRESS
    )
    body = views.detailed(stored, "CAN_QUERY")
    assert (body["pending_config"]["config_version"], body["pending_config"]["start_time"]) == (
        2,
        9,
    )
    assert body["state"] == {"ready": "NOT_READY", "config_update": "IN_PROGRESS"}
    summary = views.summary(stored)
    assert "pending_config" not in summary
    assert summary["config"] == {
        "served_entities": [{"name": "e", "entity_name": "iris", "entity_version": "1"}],
        "served_models": [{"name": "e", "model_name": "iris", "model_version": "1"}],
    }


def test_unset_optional_fields_are_left_out() -> None:
    body = views.detailed(record(document([CUSTOM])), "CAN_VIEW")
    for key in ("description", "task", "ai_gateway", "email_notifications", "budget_policy_id"):
        assert key not in body
    assert body["permission_level"] == "CAN_VIEW", "the caller's level"


def test_event_messages_read_as_sentences() -> None:
    entities = [
        {
            "name": "small",
            "entity_name": "iris",
            "entity_version": "1",
            "scale_to_zero_enabled": True,
        },
        {
            "name": "big",
            "entity_name": "iris",
            "entity_version": "2",
            "min_provisioned_concurrency": 4,
            "max_provisioned_concurrency": 16,
            "workload_type": "GPU_SMALL",
        },
    ]
    doc = document(entities, version=3)
    assert events.config_requested("admin", doc) == (
        "Config version 3 requested by admin: served entities small (Small, CPU, scale to zero); "
        "big (concurrency 4-16, GPU_SMALL); traffic small 100%"
    )
    assert events.describe_config(document([CUSTOM])) == (
        "served entities c (custom m, llm/v1/completions); traffic c 100%"
    )
    assert events.tags_changed("bob", [{"key": "a", "value": "1"}, {"key": "b"}], ["c"]) == (
        "Tags changed by bob: set a=1, b; removed c"
    )
    assert events.rate_limits_changed(
        "bob", [{"calls": 5, "renewal_period": "minute", "key": "user"}]
    ) == ("Rate limits set by bob: 5 calls per minute per user")
    assert events.rate_limits_changed("bob", []) == "Rate limits cleared by bob"
    assert events.ai_gateway_changed("bob", {}) == "AI gateway cleared by bob"
    assert events.notifications_changed("bob", {"on_update_failure": ["x@y"]}) == (
        "Email notifications set by bob: on update failure x@y; on update success nobody"
    )


def test_replica_counts_show_on_the_entities_of_each_config() -> None:
    entity = {"name": "e", "entity_name": "iris", "entity_version": "1"}
    pending = document([entity], version=2)
    stored = record(document([entity]), pending_config=pending)
    body = views.detailed(stored, "CAN_VIEW", {(1, "e"): (2, 3), (2, "e"): (0, 1)})
    served = body["config"]["served_entities"][0]
    assert (served["current_replicas"], served["desired_replicas"]) == (2, 3)
    upcoming = body["pending_config"]["served_entities"][0]
    assert (upcoming["current_replicas"], upcoming["desired_replicas"]) == (0, 1)
    assert "current_replicas" not in body["config"]["served_models"][0], "Databricks' mirror"
    plain = views.detailed(stored, "CAN_VIEW")
    assert "current_replicas" not in plain["config"]["served_entities"][0]


def test_an_entity_sized_in_throughput_shows_its_band_and_the_measured_chunk() -> None:
    entity = {
        "name": "smol-1",
        "entity_name": "smol",
        "entity_version": "1",
        "min_provisioned_throughput": 95,
        "max_provisioned_throughput": 285,
    }
    chunks = {("smol", "1"): calibration(95)}
    body = views.detailed(record(document([entity])), "CAN_VIEW", {(1, "smol-1"): (2, 3)}, chunks)
    [served] = body["config"]["served_entities"]
    assert (served["min_provisioned_throughput"], served["max_provisioned_throughput"]) == (95, 285)
    assert served["provisioned_throughput"] == {
        "chunk_size": 95,
        "min_throughput": 95,
        "max_throughput": 285,
        "current_band": 190,
        "calibrated_at": chunks[("smol", "1")].calibrated_at,
        "fingerprint": chunks[("smol", "1")].fingerprint,
    }
    units = {**entity, "min_provisioned_throughput": None, "max_provisioned_throughput": None}
    units["provisioned_model_units"] = 2
    body = views.detailed(record(document([units])), "CAN_VIEW", chunks=chunks)
    [served] = body["config"]["served_entities"]
    assert served["provisioned_model_units"] == 2
    band = served["provisioned_throughput"]
    assert (band["min_throughput"], band["max_throughput"]) == (190, 380)
    assert "current_band" not in band  # no replica counts given: nothing said about now
    # Not calibrated on this host (yet): nothing to show beyond what was asked.
    body = views.detailed(record(document([entity])), "CAN_VIEW", {(1, "smol-1"): (1, 1)})
    assert "provisioned_throughput" not in body["config"]["served_entities"][0]
