"""External-model endpoints answer the official OpenAI SDK through berth's gateway."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from berth.providers import ProviderOptions
from tests.fakes.llm_server import FakeLlmServer
from tests.support.deploy import FAKES, entity, register, wait_ready
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def external(provider: str, task: str, key: str, base: str, model: str) -> dict[str, Any]:
    if provider == "openai":
        config = {"openai_config": {"openai_api_key_plaintext": key, "openai_api_base": base}}
    else:
        config = {"anthropic_config": {"anthropic_api_key": key, "anthropic_api_base": base}}
    return {"name": model, "provider": provider, "task": task, **config}


def create(api: httpx.Client, name: str, block: dict[str, Any]) -> None:
    answer = api.post(
        "/api/2.0/serving-endpoints",
        json={"name": name, "config": {"served_entities": [{"external_model": block}]}},
    )
    assert answer.status_code == 200, answer.text
    wait_ready(api, name)


def test_openai_chat_plain_and_streamed(
    api: httpx.Client,
    sdk: openai.OpenAI,
    llm_server: FakeLlmServer,
) -> None:
    name = unique("chat")
    create(
        api,
        name,
        external("openai", "llm/v1/chat", llm_server.api_key, f"{llm_server.url}/v1", "gpt-4o"),
    )
    answer = sdk.chat.completions.create(
        model=name, messages=[{"role": "user", "content": "hello big world"}]
    )
    assert answer.choices[0].message.content == "world big hello"
    assert answer.usage is not None and answer.usage.total_tokens > 0
    pieces = sdk.chat.completions.create(
        model=name,
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(pieces)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "three two one"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_openai_completions_and_embeddings(
    api: httpx.Client,
    sdk: openai.OpenAI,
    llm_server: FakeLlmServer,
) -> None:
    completions, embeddings = unique("cmp"), unique("emb")
    base = f"{llm_server.url}/v1"
    create(
        api,
        completions,
        external(
            "openai", "llm/v1/completions", llm_server.api_key, base, "gpt-3.5-turbo-instruct"
        ),
    )
    create(
        api,
        embeddings,
        external("openai", "llm/v1/embeddings", llm_server.api_key, base, "text-embedding-3-small"),
    )
    text = sdk.completions.create(model=completions, prompt="a b c").choices[0].text
    assert text == "c b a"
    vectors = sdk.embeddings.create(model=embeddings, input=["hi", "there"])  # base64 on wire
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) > 0
    raw = api.post(
        f"/serving-endpoints/{embeddings}/invocations",
        json={"input": "hi", "encoding_format": "base64"},
    ).json()["data"][0]["embedding"]
    floats = struct.unpack(f"<{len(base64.b64decode(raw)) // 4}f", base64.b64decode(raw))
    assert list(floats) == pytest.approx(vectors.data[0].embedding)


def test_anthropic_is_translated_both_ways(
    api: httpx.Client,
    sdk: openai.OpenAI,
    llm_server: FakeLlmServer,
) -> None:
    scope, name = unique("scope"), unique("claude")
    assert api.post("/api/2.0/secrets/scopes/create", json={"scope": scope}).status_code == 200
    put = {"scope": scope, "key": "anthropic", "string_value": llm_server.api_key}
    assert api.post("/api/2.0/secrets/put", json=put).status_code == 200
    create(
        api,
        name,
        external(
            "anthropic",
            "llm/v1/chat",
            f"{{{{secrets/{scope}/anthropic}}}}",
            llm_server.url,
            "claude-sonnet",
        ),
    )
    answer = sdk.chat.completions.create(
        model=name,
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "x y"}],
    )
    assert answer.choices[0].message.content == "y x"
    assert answer.usage is not None and answer.usage.prompt_tokens > 0
    streamed = sdk.chat.completions.create(
        model=name, messages=[{"role": "user", "content": "p q r"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "r q p"


def test_a_wrong_provider_key_is_a_clear_error_without_the_key(
    api: httpx.Client,
    sdk: openai.OpenAI,
    llm_server: FakeLlmServer,
) -> None:
    name = unique("badkey")
    wrong = "sk-wrong-key-000000000000"
    create(api, name, external("openai", "llm/v1/chat", wrong, f"{llm_server.url}/v1", "gpt-4o"))
    with pytest.raises(openai.APIStatusError) as raised:
        sdk.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}])
    message = raised.value.response.text
    assert "openai" in message.lower() and wrong not in message
    listed = sdk.models.list()
    assert name in [m.id for m in listed.data]


def test_no_provider_key_is_stored_or_shown_in_plain_text(
    api: httpx.Client,
    sdk: openai.OpenAI,
    server: BerthServer,
    llm_server: FakeLlmServer,
) -> None:
    name = unique("sealed")
    key = llm_server.api_key
    create(api, name, external("openai", "llm/v1/chat", key, f"{llm_server.url}/v1", "gpt-4o"))
    answer = sdk.chat.completions.create(model=name, messages=[{"role": "user", "content": "a"}])
    assert answer.choices[0].message.content == "a"
    shown = (
        api.get(f"/api/2.0/serving-endpoints/{name}").text
        + api.get(f"/api/2.0/serving-endpoints/{name}/events").text
    )
    assert key not in shown and "{{secrets/" in shown
    leaks = [
        path
        for path in server.home.rglob("*")
        if path.is_file() and key.encode() in path.read_bytes()
    ]
    assert leaks == []


def test_secret_references_in_environment_vars_reach_the_replica_only(
    api: httpx.Client, server: BerthServer
) -> None:
    scope, name = unique("scope"), unique("envs")
    value = "swordfish-" + uuid.uuid4().hex
    assert api.post("/api/2.0/secrets/scopes/create", json={"scope": scope}).status_code == 200
    put = {"scope": scope, "key": "db", "string_value": value}
    assert api.post("/api/2.0/secrets/put", json=put).status_code == 200
    version = register(api, name, FAKES / "env_reader")
    served = entity(name, version, environment_vars={"DB_PASSWORD": f"{{{{secrets/{scope}/db}}}}"})
    created = api.post(
        "/api/2.0/serving-endpoints", json={"name": name, "config": {"served_entities": [served]}}
    )
    assert created.status_code == 200, created.text
    wait_ready(api, name)
    answer = api.post(f"/serving-endpoints/{name}/invocations", json={"names": ["DB_PASSWORD"]})
    assert answer.json() == {"DB_PASSWORD": value}
    leaks = [p for p in server.home.rglob("*") if p.is_file() and value.encode() in p.read_bytes()]
    assert leaks == []


def test_a_custom_openai_compatible_server_with_bearer_auth(
    api: httpx.Client,
    sdk: openai.OpenAI,
    llm_server: FakeLlmServer,
) -> None:
    name = unique("custom")
    block = {
        "name": "llama-3",
        "provider": "custom",
        "task": "llm/v1/chat",
        "custom_provider_config": {
            "custom_provider_url": f"{llm_server.url}/v1",
            "bearer_token_auth": {"token_plaintext": llm_server.api_key},
        },
    }
    create(api, name, block)
    answer = sdk.chat.completions.create(model=name, messages=[{"role": "user", "content": "m n"}])
    assert answer.choices[0].message.content == "n m"
    streamed = sdk.chat.completions.create(
        model=name, messages=[{"role": "user", "content": "u v w"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "w v u"


def routed(
    api: httpx.Client, name: str, condition: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The endpoint's route once the data plane's snapshot satisfies ``condition``."""
    version = -1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        snapshot = api.get("/api/2.0/berth/data-plane", params={"after": version, "timeout": 5})
        version = snapshot.json()["version"]
        (route,) = [r for r in snapshot.json()["endpoints"] if r["name"] == name]
        if condition(route):
            return route
    raise AssertionError(f"the data plane never routed {name} as expected")


def test_fallback_hands_a_failing_provider_over_to_the_next_entity(
    api: httpx.Client,
    server: BerthServer,
    llm_server: FakeLlmServer,
) -> None:
    spare = FakeLlmServer(api_key="sk-spare-0123456789").start()
    try:
        name = unique("fb")
        primary = external("openai", "llm/v1/chat", llm_server.api_key, f"{llm_server.url}/v1", "a")
        backup = external("openai", "llm/v1/chat", spare.api_key, f"{spare.url}/v1", "b")
        config = {
            "served_entities": [
                {"name": "primary", "external_model": primary},
                {"name": "backup", "external_model": backup},
            ],
            "traffic_config": {
                "routes": [
                    {"served_entity_name": "primary", "traffic_percentage": 100},
                    {"served_entity_name": "backup", "traffic_percentage": 0},
                ]
            },
        }
        created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
        assert created.status_code == 200, created.text
        wait_ready(api, name)
        chat = {"model": name, "messages": [{"role": "user", "content": "x y"}]}
        fails = ProviderOptions().max_retries + 1  # every attempt the provider client makes

        llm_server.fail_next(fails, status=503, retry_after="0")
        refused = api.post("/serving-endpoints/chat/completions", json=chat)
        assert refused.status_code == 503, refused.text
        assert spare.requests == []

        enabled = {"fallback_config": {"enabled": True}}
        assert api.put(f"/api/2.0/serving-endpoints/{name}/ai-gateway", json=enabled).is_success
        routed(api, name, lambda route: route["fallback"])
        llm_server.fail_next(fails, status=503, retry_after="0")
        answer = api.post("/serving-endpoints/chat/completions", json=chat)
        assert answer.status_code == 200, answer.text
        assert answer.headers["served-model-name"] == "backup"
        request_id = answer.headers["x-request-id"]
        logged = [json.loads(line) for line in server.log_path.read_text().splitlines()]
        (warning,) = [line for line in logged if line.get("request_id") == request_id]
        assert warning["level"] == "warning" and "falling back" in warning["message"]
        assert answer.json()["choices"][0]["message"]["content"] == "y x"
        assert len(spare.requests) == 1

        llm_server.fail_next(1, status=401)  # a refused key is not the provider being down
        wrong = api.post("/serving-endpoints/chat/completions", json=chat)
        assert wrong.status_code == 403 and len(spare.requests) == 1
        healthy = api.post("/serving-endpoints/chat/completions", json=chat)
        assert healthy.headers["served-model-name"] == "primary"
    finally:
        spare.stop()
