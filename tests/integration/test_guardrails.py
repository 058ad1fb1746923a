"""AI gateway guardrails that berth enforces really block or mask, in requests and answers;
those it cannot enforce are refused when stored."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.fakes.llm_server import FakeLlmServer
from tests.support.deploy import wait_ready

pytestmark = pytest.mark.integration
BASE = "/api/2.0/serving-endpoints"


def chat_endpoint(api: httpx.Client, llm: FakeLlmServer, guardrails: dict[str, Any]) -> str:
    name = f"guard-{uuid.uuid4().hex[:8]}"
    model = {
        "name": "gpt-x",
        "provider": "openai",
        "task": "llm/v1/chat",
        "openai_config": {
            "openai_api_key_plaintext": llm.api_key,
            "openai_api_base": llm.url + "/v1",
        },
    }
    body = {
        "name": name,
        "config": {"served_entities": [{"name": "gpt", "external_model": model}]},
        "ai_gateway": {"guardrails": guardrails},
    }
    created = api.post(BASE, json=body)
    assert created.status_code == 200, created.text
    wait_ready(api, name)
    return name


def ask(api: httpx.Client, name: str, text: str, **extra: Any) -> httpx.Response:
    chat = {"model": name, "messages": [{"role": "user", "content": text}], **extra}
    return api.post("/serving-endpoints/chat/completions", json=chat)


def test_input_guardrails_block_keywords_and_mask_pii_before_the_provider_sees_them(
    api: httpx.Client, llm_server: FakeLlmServer
) -> None:
    name = chat_endpoint(
        api,
        llm_server,
        {"input": {"invalid_keywords": ["Project Zeus"], "pii": {"behavior": "MASK"}}},
    )
    blocked = ask(api, name, "tell me about project zeus please")
    assert blocked.status_code == 400, blocked.text
    assert "invalid keyword" in blocked.json()["message"]
    before = len(llm_server.requests)
    answered = ask(api, name, "write to bob@example.com or 4111 1111 1111 1111")
    assert answered.status_code == 200, answered.text
    sent = json.dumps([r.body for r in llm_server.requests[before:]])
    assert "bob@example.com" not in sent and "4111" not in sent
    assert "[REDACTED]" in sent


def test_output_guardrails_mask_or_block_what_the_model_answers(
    api: httpx.Client, llm_server: FakeLlmServer
) -> None:
    masked = chat_endpoint(api, llm_server, {"output": {"pii": {"behavior": "MASK"}}})
    answer = ask(api, masked, "reach me at alice@example.org")
    assert answer.status_code == 200, answer.text
    content = answer.json()["choices"][0]["message"]["content"]
    assert "alice@example.org" not in content and "[REDACTED]" in content
    streamed = ask(api, masked, "alice@example.org", stream=True)
    assert streamed.status_code == 400, streamed.text
    assert "stream" in streamed.json()["message"]

    blocking = chat_endpoint(api, llm_server, {"output": {"pii": {"behavior": "BLOCK"}}})
    refused = ask(api, blocking, "reach me at alice@example.org")
    assert refused.status_code == 400, refused.text
    assert "personal information" in refused.json()["message"]
    assert ask(api, blocking, "nothing personal here").status_code == 200


def test_guardrails_berth_cannot_enforce_are_refused(
    api: httpx.Client, llm_server: FakeLlmServer
) -> None:
    name = chat_endpoint(api, llm_server, {"input": {"invalid_keywords": ["x"]}})
    for refused in ({"input": {"safety": True}}, {"output": {"valid_topics": ["billing"]}}):
        answer = api.put(f"{BASE}/{name}/ai-gateway", json={"guardrails": refused})
        assert answer.status_code == 400, answer.text
        assert "invalid_keywords and pii" in answer.json()["message"]
