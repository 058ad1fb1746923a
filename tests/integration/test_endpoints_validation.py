"""Each bad input gets its Databricks error code, status and a message saying what to fix,
and leaves the store as it was."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.deploy import register_model, requested, unique, wait_ready
from tests.support.secrets import ensure_referenced_secrets
from tests.support.servers import BerthServer

pytestmark = [pytest.mark.integration, pytest.mark.stores("sqlite", "postgresql")]

BASE = "/api/2.0/serving-endpoints"
MODEL = "{model}"
"""Stands for the registered model of the module in the payloads below."""

Payload = dict[str, Any]


@pytest.fixture(autouse=True)
def _referenced_secrets(api: httpx.Client) -> None:
    ensure_referenced_secrets(api)


@pytest.fixture(scope="module")
def model(server: BerthServer) -> Iterator[str]:
    with server.client() as client:
        yield register_model(client)


@pytest.fixture
def name(api: httpx.Client) -> Iterator[str]:
    endpoint_name = unique("ep")
    yield endpoint_name
    api.delete(f"{BASE}/{endpoint_name}")  # stops its replicas, sparing the tests after


def entity(version: str = "1", **fields: Any) -> Payload:
    return {"entity_name": MODEL, "entity_version": version, **fields}


def external(**overrides: Any) -> Payload:
    model = {
        "name": "gpt-4o",
        "provider": "openai",
        "task": "llm/v1/chat",
        "openai_config": {"openai_api_key": "{{secrets/llm/openai}}"},
    }
    return {"external_model": {**model, **overrides}}


def fill(value: Any, model: str) -> Any:
    """``value`` with ``MODEL`` replaced by the registered model's name."""
    if isinstance(value, dict):
        return {key: fill(item, model) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, model) for item in value]
    return model if value == MODEL else value


def assert_error(response: httpx.Response, status: int, code: str, *fragments: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    for fragment in fragments:
        assert fragment in body["message"]


def names(api: httpx.Client) -> list[str]:
    """The endpoints that exist (the controller changes their states, never this list)."""
    return [endpoint["name"] for endpoint in api.get(BASE).json()["endpoints"]]


def snapshot(api: httpx.Client, name: str) -> tuple[Any, ...]:
    """What a request could write, as a client sees it: which endpoints exist, the endpoint
    as requests left it (config, pending config, update state, tags, settings, timestamps)
    and its events.

    Take it of a settled endpoint: an update in progress is the controller's to finish.
    """
    endpoint = api.get(f"{BASE}/{name}")
    body = endpoint.json()
    if endpoint.status_code == 200:
        body = requested(body)
    events = api.get(f"{BASE}/{name}/events")
    return names(api), endpoint.status_code, body, events.status_code, events.json()


INVALID = "INVALID_PARAMETER_VALUE"
MISSING = "RESOURCE_DOES_NOT_EXIST"


def served(*entities: Payload, routes: dict[str, int] | None = None) -> Payload:
    """A config of ``entities`` with ``routes`` as {served entity name: percentage}."""
    config: Payload = {"served_entities": list(entities)}
    if routes is not None:
        config["traffic_config"] = {
            "routes": [
                {"served_entity_name": n, "traffic_percentage": p} for n, p in routes.items()
            ]
        }
    return config


def case(case_id: str, config: Payload, *fragments: str, code: str = INVALID) -> Any:
    return pytest.param(config, code, fragments, id=case_id)


TWO_ROUTES_TO_A = {
    "served_entities": [entity(name="a")],
    "traffic_config": {
        "routes": [
            {"served_entity_name": "a", "traffic_percentage": 50},
            {"served_model_name": "a", "traffic_percentage": 50},
        ]
    },
}
BOTH_KEY_FORMS = {"openai_api_key": "{{secrets/a/b}}", "openai_api_key_plaintext": "sk"}

BAD_CONFIGS = [
    case(
        "wrong type",
        served({"entity_name": MODEL, "entity_version": [1]}),
        "config.served_entities.0.entity_version",
    ),
    case("unknown field", served(entity(replicas=3)), "config.served_entities.0.replicas"),
    case(
        "routes sum to 90",
        served(entity(name="a"), entity(name="b"), routes={"a": 50, "b": 40}),
        "traffic_config routes sum to 90, they must sum to 100",
    ),
    case(
        "route to an unknown entity",
        served(entity(name="a"), routes={"z": 100}),
        "served entity 'z'",
        "served entities: a",
    ),
    case("two routes to one entity", TWO_ROUTES_TO_A, "several routes to 'a'"),
    case("percentage above 100", served(entity(name="a"), routes={"a": 150}), "traffic_percentage"),
    case(
        "several entities without traffic_config",
        served(entity(name="a"), entity(name="b")),
        "2 served entities but no traffic_config",
    ),
    case(
        "unknown workload_size",
        served(entity(workload_size="Huge")),
        "config.served_entities.0.workload_size",
        "'Small'",
    ),
    case(
        "unknown workload_type",
        served(entity(workload_type="TPU")),
        "config.served_entities.0.workload_type",
        "'GPU_SMALL'",
    ),
    case(
        "a GPU workload type on a host without GPUs",
        served(entity(workload_size="Small", workload_type="GPU_SMALL")),
        "served_entities[0]",
        "GPU_SMALL holds 1 GPU per replica and this host has none",
        "BERTH_REPLICAS__GPUS",
    ),
    case(
        "eleven entities",
        served(*[entity(name=f"e{i}") for i in range(11)], routes={"e0": 100}),
        "11 served entities",
        "at most 10",
    ),
    case("duplicate served names", served(entity(), entity(), routes={"x": 100}), "more than once"),
    case(
        "concurrency with workload_size",
        served(
            entity(
                workload_size="Small", min_provisioned_concurrency=4, max_provisioned_concurrency=8
            )
        ),
        "workload_size and min/max_provisioned_concurrency exclude each other",
    ),
    case(
        "min concurrency above max",
        served(entity(min_provisioned_concurrency=8, max_provisioned_concurrency=4)),
        "min_provisioned_concurrency (8) is greater than max_provisioned_concurrency (4)",
    ),
    case("no served entities", served(), "no served entities"),
    case(
        "served_entities and served_models",
        {**served(entity()), "served_models": [{"model_name": MODEL, "model_version": "1"}]},
        "both served_entities and served_models",
    ),
    case(
        "entity without model",
        served({"workload_size": "Small"}),
        "give entity_name and entity_version",
    ),
    case(
        "unknown registered model",
        served({"entity_name": "no-such-model", "entity_version": "1"}),
        "no-such-model",
        code=MISSING,
    ),
    case("unknown model version", served(entity(version="9")), "no version 9", code=MISSING),
    case(
        "unknown provider",
        served(external(provider="acme")),
        "config.served_entities.0.external_model.provider",
    ),
    case(
        "unknown task",
        served(external(task="llm/v1/images")),
        "config.served_entities.0.external_model.task",
    ),
    case(
        "key and plaintext key",
        served(external(openai_config=BOTH_KEY_FORMS)),
        "exactly one of openai_api_key",
    ),
    case(
        "no key",
        served(external(openai_config={"openai_api_base": "https://x"})),
        "exactly one of openai_api_key",
    ),
    case(
        "config block of another provider",
        served(external(anthropic_config={"anthropic_api_key": "{{secrets/a/b}}"})),
        "anthropic_config",
        "does not match provider 'openai'",
    ),
    case(
        "external model with entity fields",
        served({**external(), "workload_size": "Small"}),
        "cannot be combined with workload_size",
    ),
    case(
        "external models with different tasks",
        served(
            external(),
            {"name": "emb", **external(task="llm/v1/embeddings")},
            routes={"gpt-4o": 100},
        ),
        "share one task",
        "llm/v1/chat, llm/v1/embeddings",
    ),
    case(
        "external and registered models",
        served(external(), entity(name="m"), routes={"gpt-4o": 100}),
        "mixes external models with registered models",
    ),
]


@pytest.mark.parametrize(("config", "code", "fragments"), BAD_CONFIGS)
def test_bad_create_config_is_refused_and_nothing_is_stored(
    api: httpx.Client, model: str, name: str, config: Payload, code: str, fragments: tuple[str, ...]
) -> None:
    before = snapshot(api, name)
    response = api.post(BASE, json={"name": name, "config": fill(config, model)})
    assert_error(response, 404 if code == MISSING else 400, code, *fragments)
    assert snapshot(api, name) == before


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "bad name!"}, "Invalid endpoint name 'bad name!'"),
        ({"name": ""}, "Invalid endpoint name ''"),
        ({"name": "x" * 64}, "1 to 63 characters"),
        ({"nmae": "typo"}, "nmae"),
        ({"name": 7}, "name"),
        ({"name": "{name}", "tags": [{"value": "v"}]}, "tags.0.key"),
    ],
)
def test_bad_create_body_is_refused(
    api: httpx.Client, model: str, name: str, body: Payload, fragment: str
) -> None:
    payload = {"config": {"served_entities": [fill(entity(), model)]}, **body}
    if payload.get("name") == "{name}":
        payload["name"] = name
    before = names(api)
    assert_error(api.post(BASE, json=payload), 400, "INVALID_PARAMETER_VALUE", fragment)
    assert names(api) == before


def test_malformed_json_is_bad_request(api: httpx.Client) -> None:
    before = names(api)
    response = api.post(
        BASE, content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "BAD_REQUEST", "Malformed JSON")
    assert names(api) == before


def test_duplicate_name_is_resource_already_exists(
    api: httpx.Client, model: str, name: str
) -> None:
    first = {"name": name, "config": {"served_entities": [fill(entity(), model)]}}
    assert api.post(BASE, json=first).status_code == 200
    wait_ready(api, name)
    before = snapshot(api, name)
    second = {"name": name, "config": {"served_entities": [external()]}}
    assert_error(api.post(BASE + "/", json=second), 409, "RESOURCE_ALREADY_EXISTS", name)
    assert snapshot(api, name) == before


@pytest.fixture
def make_endpoint(api: httpx.Client, model: str, name: str) -> Callable[[Payload], str]:
    """Create the endpoint ``name`` with ``config`` and wait until it serves it."""

    def make(config: Payload) -> str:
        response = api.post(BASE, json={"name": name, "config": fill(config, model)})
        assert response.status_code == 200, response.text
        wait_ready(api, name)
        return name

    return make


BAD_UPDATES = [
    pytest.param(
        served(entity()),
        served(external()),
        "external models cannot be added to or removed from an existing endpoint",
        INVALID,
        id="external model added",
    ),
    pytest.param(
        served(external()),
        served(entity()),
        "external models cannot be added to or removed from an existing endpoint",
        INVALID,
        id="external model removed",
    ),
    pytest.param(
        served(entity()), served(entity(version="5")), "no version 5", MISSING, id="unknown version"
    ),
    pytest.param(
        served(entity()),
        served(entity(name="a"), routes={"a": 99}),
        "sum to 99",
        INVALID,
        id="bad routes",
    ),
]


@pytest.mark.parametrize(("first", "update", "fragment", "code"), BAD_UPDATES)
def test_bad_config_update_is_refused_and_nothing_is_stored(
    api: httpx.Client,
    model: str,
    make_endpoint: Callable[[Payload], str],
    first: Payload,
    update: Payload,
    fragment: str,
    code: str,
) -> None:
    name = make_endpoint(first)
    before = snapshot(api, name)
    response = api.put(f"{BASE}/{name}/config", json=fill(update, model))
    assert_error(response, 404 if code == MISSING else 400, code, fragment)
    assert snapshot(api, name) == before


def test_tag_both_added_and_deleted_is_refused(
    api: httpx.Client, make_endpoint: Callable[[Payload], str]
) -> None:
    name = make_endpoint({"served_entities": [external()]})
    before = snapshot(api, name)
    patch = {"add_tags": [{"key": "env", "value": "x"}], "delete_tags": ["env"]}
    assert_error(
        api.patch(f"{BASE}/{name}/tags", json=patch), 400, "INVALID_PARAMETER_VALUE", "env"
    )
    assert snapshot(api, name) == before


@pytest.mark.parametrize(
    ("suffix", "body", "fragment"),
    [
        (
            "/rate-limits",
            {"rate_limits": [{"calls": 1, "renewal_period": "hour"}]},
            "renewal_period",
        ),
        ("/ai-gateway", {"guardrails": {"input": {"pii": {"behavior": "HIDE"}}}}, "behavior"),
        ("/notifications", {"email_notifications": {"on_failure": []}}, "on_failure"),
    ],
)
def test_bad_settings_are_refused(
    api: httpx.Client,
    make_endpoint: Callable[[Payload], str],
    suffix: str,
    body: Payload,
    fragment: str,
) -> None:
    name = make_endpoint({"served_entities": [external()]})
    before = snapshot(api, name)
    method = "PATCH" if suffix == "/notifications" else "PUT"
    response = api.request(method, f"{BASE}/{name}{suffix}", json=body)
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", fragment)
    assert snapshot(api, name) == before


def test_an_update_may_move_an_external_endpoint_to_another_task(
    api: httpx.Client, make_endpoint: Callable[[Payload], str]
) -> None:
    """Seed 003's example: an embeddings endpoint becomes a chat endpoint with a whole new
    config."""
    name = make_endpoint(served(external(name="emb", task="llm/v1/embeddings")))
    assert api.get(f"{BASE}/{name}").json()["task"] == "llm/v1/embeddings"
    moved = api.put(f"{BASE}/{name}/config", json=served(external(task="llm/v1/chat")))
    assert moved.status_code == 200, moved.text
    wait_ready(api, name)
    assert api.get(f"{BASE}/{name}").json()["task"] == "llm/v1/chat"
