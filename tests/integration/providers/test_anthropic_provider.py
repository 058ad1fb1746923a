"""The Anthropic provider against the fake Messages API, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from berth.core.errors import BadRequest, InvalidParameter
from berth.providers import Provider, ProviderCredentialsRejected
from tests.fakes.llm_server import FakeLlmServer
from tests.integration.providers.test_openai_provider import call, collect
from tests.support.providers import RecordedSleeps, anthropic_provider, chat

pytestmark = pytest.mark.integration


def test_chat_translates_both_ways(llm_server: FakeLlmServer) -> None:
    request = {
        "messages": [
            {"role": "system", "content": "be kind"},
            {"role": "user", "content": "one two three four"},
        ],
        "stop": ["two"],
        "frequency_penalty": 0.5,
    }
    answer = call(anthropic_provider(llm_server), lambda p: p.chat(request))
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": "four three "}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["prompt_tokens"] == 6
    assert answer["usage"]["completion_tokens"] == 2
    sent = llm_server.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.body["system"] == "be kind" and sent.body["max_tokens"] == 1024
    assert sent.body["model"] == "claude-fake"


def test_both_auth_headers_and_a_version_are_sent(llm_server: FakeLlmServer) -> None:
    call(anthropic_provider(llm_server), lambda p: p.chat(chat("x")))
    headers = llm_server.requests[0].headers
    assert headers["x-api-key"] == llm_server.api_key
    assert headers["authorization"] == f"Bearer {llm_server.api_key}"
    assert headers["anthropic-version"]


def test_max_tokens_cut_is_length(llm_server: FakeLlmServer) -> None:
    answer = call(anthropic_provider(llm_server), lambda p: p.chat(chat("a b c", max_tokens=2)))
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["choices"][0]["message"]["content"] == "c b"


def test_stream_becomes_openai_chunks(llm_server: FakeLlmServer) -> None:
    request = chat("a b c d", stream_options={"include_usage": True})
    chunks = call(anthropic_provider(llm_server), lambda p: collect(p.chat_stream(request)))
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "d c b a"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 4,
        "total_tokens": 8,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_completions_and_their_stream(llm_server: FakeLlmServer) -> None:
    provider = anthropic_provider(llm_server)

    async def both(p: Provider) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        answer = await p.completions({"prompt": "x y"})
        return answer, await collect(p.completions_stream({"prompt": "x y"}))

    answer, chunks = call(provider, both)
    assert answer["choices"][0]["text"] == "y x"
    assert "".join(c["choices"][0]["text"] for c in chunks) == "y x"
    assert chunks[-1]["usage"]["completion_tokens"] == 2


def test_tool_use_comes_back_as_tool_calls(llm_server: FakeLlmServer) -> None:
    tool = {"type": "function", "function": {"name": "echo", "parameters": {"type": "object"}}}
    request = chat("p q", tools=[tool], tool_choice="required")
    answer = call(anthropic_provider(llm_server), lambda p: p.chat(request))
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"] == {
        "name": "echo",
        "arguments": '{"text": "q p"}',
    }


def test_overloaded_529_is_retried(llm_server: FakeLlmServer) -> None:
    llm_server.fail_next(1, status=529, retry_after="1")
    sleeps = RecordedSleeps()
    answer = call(anthropic_provider(llm_server, sleeps=sleeps), lambda p: p.chat(chat("z")))
    assert answer["choices"][0]["message"]["content"] == "z"
    assert sleeps == [1.0]


def test_wrong_key_is_refused_with_anthropics_message(llm_server: FakeLlmServer) -> None:
    with pytest.raises(ProviderCredentialsRejected, match="anthropic.*invalid x-api-key"):
        call(anthropic_provider(llm_server, key="sk-ant-wrong"), lambda p: p.chat(chat("x")))


def test_anthropic_rejections_are_bad_requests(llm_server: FakeLlmServer) -> None:
    request = chat("x", extra_params={"unknown_knob": 1})
    with pytest.raises(BadRequest, match="unknown_knob: Extra inputs are not permitted"):
        call(anthropic_provider(llm_server), lambda p: p.chat(request))


def test_embeddings_are_refused(llm_server: FakeLlmServer) -> None:
    with pytest.raises(InvalidParameter, match="no embeddings"):
        call(anthropic_provider(llm_server), lambda p: p.embeddings({"input": "x"}))
