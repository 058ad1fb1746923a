"""Normalising endpoint configs: defaults, deprecated forms, routes and the stored document."""

from __future__ import annotations

from typing import Any

import pytest

from berth.api.endpoint_config import (
    QUEUED,
    ModelRef,
    check_endpoint_name,
    check_update,
    merge_tags,
    normalise_config,
)
from berth.api.schemas.endpoints import EndpointCoreConfigInput, EndpointTag
from berth.core.endpoint_config import ServedEntity, TrafficRoute
from berth.core.errors import InvalidParameter


def config(**fields: Any) -> EndpointCoreConfigInput:
    return EndpointCoreConfigInput.model_validate(fields)


def chat(model_id: str = "gpt-4o", task: str = "llm/v1/chat") -> dict[str, Any]:
    return {
        "external_model": {
            "name": model_id,
            "provider": "anthropic",
            "task": task,
            "anthropic_config": {"anthropic_api_key": "{{secrets/llm/anthropic}}"},
        }
    }


def test_a_registered_model_entity_gets_databricks_defaults() -> None:
    normalised = normalise_config(
        config(name="ignored", served_entities=[{"entity_name": "iris", "entity_version": "3"}])
    )
    assert normalised.served_entities == (
        ServedEntity(
            name="iris-3",
            entity_name="iris",
            entity_version="3",
            workload_size="Small",
            workload_type="CPU",
            scale_to_zero_enabled=False,
        ),
    )
    assert normalised.routes == (TrafficRoute("iris-3", 100),)
    assert normalised.task is None
    assert normalised.model_refs == [ModelRef("iris-3", "iris", "3")]


def test_provisioned_concurrency_replaces_the_default_workload_size() -> None:
    entity = {
        "entity_name": "iris",
        "entity_version": "1",
        "min_provisioned_concurrency": 0,
        "max_provisioned_concurrency": 8,
    }
    [doc] = normalise_config(config(served_entities=[entity])).served_entities
    assert doc.workload_size is None
    assert (doc.min_provisioned_concurrency, doc.max_provisioned_concurrency) == (0, 8)


def test_only_one_concurrency_bound_is_refused() -> None:
    entity = {"entity_name": "iris", "entity_version": "1", "max_provisioned_concurrency": 8}
    with pytest.raises(InvalidParameter, match="give both min_provisioned_concurrency"):
        normalise_config(config(served_entities=[entity]))


def test_min_throughput_above_max_is_refused() -> None:
    entity = {
        "entity_name": "llm",
        "entity_version": "1",
        "min_provisioned_throughput": 200,
        "max_provisioned_throughput": 100,
    }
    with pytest.raises(InvalidParameter, match=r"min_provisioned_throughput \(200\)"):
        normalise_config(config(served_entities=[entity]))


def test_throughput_entities_take_no_default_workload_size() -> None:
    entity = {
        "entity_name": "llm",
        "entity_version": "1",
        "min_provisioned_throughput": 0,
        "max_provisioned_throughput": 190,
    }
    [doc] = normalise_config(config(served_entities=[entity])).served_entities
    assert doc.workload_size is None
    assert (doc.min_provisioned_throughput, doc.max_provisioned_throughput) == (0, 190)
    [units] = normalise_config(
        config(
            served_entities=[
                {"entity_name": "llm", "entity_version": "1", "provisioned_model_units": 2}
            ]
        )
    ).served_entities
    assert (units.workload_size, units.provisioned_model_units) == (None, 2)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"workload_size": "Small", "max_provisioned_throughput": 95},
            "workload_size or provisioned concurrency exclude each other",
        ),
        (
            {
                "min_provisioned_concurrency": 0,
                "max_provisioned_concurrency": 4,
                "provisioned_model_units": 1,
            },
            "exclude each other",
        ),
        ({"max_provisioned_throughput": 95}, "give both min_provisioned_throughput"),
        (
            {"min_provisioned_throughput": 0, "max_provisioned_throughput": 0},
            "max_provisioned_throughput is 0",
        ),
        (
            {
                "min_provisioned_throughput": 95,
                "max_provisioned_throughput": 190,
                "scale_to_zero_enabled": True,
            },
            "scale_to_zero_enabled needs min_provisioned_throughput 0",
        ),
        (
            {"provisioned_model_units": 1, "max_provisioned_throughput": 95},
            "provisioned_model_units and min/max_provisioned_throughput exclude each other",
        ),
        ({"provisioned_model_units": 0}, "provisioned_model_units must be 1 or more"),
        (
            {"provisioned_model_units": 1, "scale_to_zero_enabled": True},
            "never scales to zero",
        ),
    ],
)
def test_provisioned_throughput_that_cannot_hold_is_refused_saying_why(
    fields: dict[str, Any], message: str
) -> None:
    entity = {"entity_name": "llm", "entity_version": "1", **fields}
    with pytest.raises(InvalidParameter, match=message):
        normalise_config(config(served_entities=[entity]))


def test_a_minimum_of_zero_may_scale_to_zero() -> None:
    entity = {
        "entity_name": "llm",
        "entity_version": "1",
        "min_provisioned_throughput": 0,
        "max_provisioned_throughput": 95,
        "scale_to_zero_enabled": True,
    }
    [doc] = normalise_config(config(served_entities=[entity])).served_entities
    assert doc.scale_to_zero_enabled


def test_served_models_become_served_entities() -> None:
    served_model = {
        "model_name": "iris",
        "model_version": "2",
        "scale_to_zero_enabled": True,
        "workload_size": "Large",
    }
    [doc] = normalise_config(config(served_models=[served_model])).served_entities
    assert doc.name == "iris-2"
    assert doc.registered_model == ("iris", "2")
    assert (doc.workload_size, doc.scale_to_zero_enabled) == ("Large", True)


def test_external_models_are_named_after_the_provider_model_and_share_a_task() -> None:
    normalised = normalise_config(
        config(
            served_entities=[chat("claude-3.5:sonnet"), {**chat("haiku"), "name": "small"}],
            traffic_config={
                "routes": [
                    {"served_model_name": "claude-3-5-sonnet", "traffic_percentage": 70},
                    {"served_entity_name": "small", "traffic_percentage": 30},
                ]
            },
        )
    )
    assert [doc.name for doc in normalised.served_entities] == ["claude-3-5-sonnet", "small"]
    assert normalised.served_entities[0].workload_size is None
    assert normalised.task == "llm/v1/chat"
    assert normalised.model_refs == []
    assert [r.served_entity_name for r in normalised.routes] == ["claude-3-5-sonnet", "small"]


def test_a_route_naming_two_different_entities_is_refused() -> None:
    route = {"served_entity_name": "a", "served_model_name": "b", "traffic_percentage": 100}
    with pytest.raises(InvalidParameter, match="names one served entity"):
        normalise_config(
            config(
                served_entities=[{"name": "a", **chat()}],
                traffic_config={"routes": [route]},
            )
        )


def test_an_empty_traffic_config_means_the_default_route() -> None:
    normalised = normalise_config(config(served_entities=[chat()], traffic_config={"routes": []}))
    assert normalised.routes == (TrafficRoute("gpt-4o", 100),)


def test_the_document_adds_version_creator_and_initial_states() -> None:
    normalised = normalise_config(
        config(
            served_entities=[{"entity_name": "iris", "entity_version": "1"}],
            auto_capture_config={"catalog_name": "main", "enabled": True},
        )
    )
    doc = normalised.document(version=4, creator="alice", now_ms=1234).to_json()
    assert doc["config_version"] == 4
    assert "start_time" not in doc
    assert doc["traffic_config"] == {
        "routes": [{"served_entity_name": "iris-1", "traffic_percentage": 100}]
    }
    assert doc["auto_capture_config"] == {"catalog_name": "main", "enabled": True}
    [entity] = doc["served_entities"]
    assert (entity["creator"], entity["creation_timestamp"]) == ("alice", 1234)
    assert entity["state"] == {
        "deployment": "DEPLOYMENT_CREATING",
        "deployment_state_message": QUEUED,
    }
    external = (
        normalise_config(config(served_entities=[chat()]))
        .document(version=1, creator="bob", now_ms=1, start_time=1)
        .to_json()
    )
    assert external["start_time"] == 1
    assert external["served_entities"][0]["state"]["deployment"] == "DEPLOYMENT_CREATING"
    assert "auto_capture_config" not in external


@pytest.mark.parametrize("name", ["a", "A-b_9", "x" * 63])
def test_valid_endpoint_names(name: str) -> None:
    assert check_endpoint_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 64, "has space", "dot.ted", "ünï"])
def test_invalid_endpoint_names(name: str) -> None:
    with pytest.raises(InvalidParameter, match="1 to 63 characters"):
        check_endpoint_name(name)


def test_an_update_keeps_the_kind_of_an_endpoint_and_may_change_its_task() -> None:
    """Seed 003's example moves an endpoint from embeddings to chat with a whole new config."""
    chat_config = normalise_config(config(served_entities=[chat()]))
    check_update("ep", "llm/v1/chat", chat_config)
    with pytest.raises(InvalidParameter, match="serves registered models"):
        check_update("ep", None, chat_config)
    check_update("ep", "llm/v1/embeddings", chat_config)


def test_a_numeric_entity_version_is_taken_as_its_text() -> None:
    entity = {"entity_name": "iris", "entity_version": 2}
    [doc] = normalise_config(config(served_entities=[entity])).served_entities
    assert doc.entity_version == "2"


@pytest.mark.parametrize(
    "provider", ["cohere", "amazon-bedrock", "google-cloud-vertex-ai", "ai21labs", "palm"]
)
def test_providers_berth_cannot_call_are_refused_when_stored(provider: str) -> None:
    block = {"name": "m", "provider": provider, "task": "llm/v1/chat"}
    with pytest.raises(InvalidParameter, match="use openai, anthropic, custom"):
        normalise_config(config(served_entities=[{"external_model": block}]))


def test_merge_tags_overwrites_appends_and_deletes() -> None:
    current = [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
    added = [EndpointTag(key="b", value="3"), EndpointTag(key="c")]
    assert merge_tags(current, added, ["a", "missing"]) == [
        {"key": "b", "value": "3"},
        {"key": "c"},
    ]


def test_batching_and_idle_fields_are_kept_and_checked_against_what_they_tune() -> None:
    iris = {"entity_name": "iris", "entity_version": "1"}
    batched = {**iris, "max_batch_size": 32, "max_batch_wait_ms": 2.5}
    [doc] = normalise_config(config(served_entities=[batched])).served_entities
    assert (doc.max_batch_size, doc.max_batch_wait_ms) == (32, 2.5)
    idle = {**iris, "scale_to_zero_enabled": True, "scale_to_zero_idle_seconds": 60}
    [doc] = normalise_config(config(served_entities=[idle])).served_entities
    assert doc.scale_to_zero_idle_seconds == 60
    with pytest.raises(InvalidParameter, match="give max_batch_size"):
        normalise_config(config(served_entities=[{**iris, "max_batch_wait_ms": 3}]))
    with pytest.raises(InvalidParameter, match="only with scale_to_zero_enabled"):
        normalise_config(config(served_entities=[{**iris, "scale_to_zero_idle_seconds": 5}]))
    with pytest.raises(InvalidParameter, match="external_model cannot be combined"):
        normalise_config(config(served_entities=[{**chat(), "max_batch_size": 8}]))
