"""OpenAI chat to Anthropic Messages and back, as pure translations."""

from __future__ import annotations

import json

import pytest

from berth.core.errors import InvalidParameter
from berth.providers.anthropic_format import (
    DEFAULT_MAX_TOKENS,
    chat_completion,
    messages_request,
    prompt_request,
    text_completion,
)
from berth.providers.anthropic_stream import StreamTranslator


def test_system_messages_move_to_system_and_max_tokens_gets_a_default() -> None:
    body = messages_request(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "No jokes."}]},
                {"role": "user", "content": "Hi"},
            ],
            "stop": "END",
            "temperature": 0.2,
            "presence_penalty": 1.0,
            "user": "alice",
        },
        "claude-x",
    )
    assert body == {
        "model": "claude-x",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "system": "Be brief.\n\nNo jokes.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "stop_sequences": ["END"],
        "temperature": 0.2,
        "metadata": {"user_id": "alice"},
    }


def test_max_completion_tokens_wins_and_extra_params_pass_through() -> None:
    body = messages_request(
        {
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 10,
            "max_completion_tokens": 20,
            "extra_params": {"top_k": 5},
        },
        "m",
    )
    assert body["max_tokens"] == 20 and body["top_k"] == 5


def test_tools_tool_calls_and_tool_results_become_blocks() -> None:
    body = messages_request(
        {
            "messages": [
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "Rain"},
                {"role": "user", "content": "Thanks"},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "weather", "parameters": {"type": "object"}},
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
        },
        "m",
    )
    assert body["tools"] == [{"name": "weather", "input_schema": {"type": "object"}}]
    assert body["tool_choice"] == {"type": "tool", "name": "weather"}
    assert [turn["role"] for turn in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}}
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "Rain"},
        {"type": "text", "text": "Thanks"},
    ]


def test_image_parts_become_image_blocks() -> None:
    content = [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}},
    ]
    body = messages_request({"messages": [{"role": "user", "content": content}]}, "m")
    assert [block["source"] for block in body["messages"][0]["content"]] == [
        {"type": "base64", "media_type": "image/png", "data": "AAAA"},
        {"type": "url", "url": "https://x.test/cat.png"},
    ]


def test_requests_anthropic_cannot_express_are_refused() -> None:
    with pytest.raises(InvalidParameter, match="n=1"):
        messages_request({"messages": [{"role": "user", "content": "x"}], "n": 2}, "m")
    with pytest.raises(InvalidParameter, match="one prompt"):
        prompt_request({"prompt": ["a", "b"]}, "m")


def test_prompt_becomes_one_user_turn() -> None:
    body = prompt_request({"prompt": ["Say hi"], "max_tokens": 5}, "m")
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hi"}]}]
    assert body["max_tokens"] == 5


MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 5},
}


def test_a_message_becomes_a_chat_completion() -> None:
    answer = chat_completion(MESSAGE, created=123)
    choice = answer["choices"][0]
    assert (answer["id"], answer["object"], answer["created"]) == ("msg_1", "chat.completion", 123)
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "toolu_1" and json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    assert answer["usage"] == {
        "prompt_tokens": 15,
        "completion_tokens": 4,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 5},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason: str, finish: str) -> None:
    answer = text_completion({**MESSAGE, "stop_reason": stop_reason}, created=0)
    assert answer["choices"][0]["finish_reason"] == finish
    assert answer["choices"][0]["text"] == "Let me check."


def feed_all(translator: StreamTranslator, events: list[tuple[str, dict[str, object]]]) -> list:
    return [chunk for name, data in events for chunk in translator.feed(name, data)]


def test_stream_events_become_chat_chunks_with_tool_call_pieces() -> None:
    events: list[tuple[str, dict[str, object]]] = [
        ("message_start", {"message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 7}}}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("ping", {}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        ("content_block_stop", {"index": 0}),
        (
            "content_block_start",
            {"index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f"}},
        ),
        (
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}},
        ),
        (
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}},
        ),
        ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        ("message_stop", {}),
    ]
    chunks = feed_all(StreamTranslator("chat", created=5), events)
    deltas = [c["choices"][0]["delta"] for c in chunks[:-1]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"content": "Hi"}
    assert deltas[2]["tool_calls"][0] == {
        "index": 0,
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    pieces = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[3:5]]
    assert "".join(pieces) == '{"a":1}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 16
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


def test_stream_events_become_text_completion_chunks() -> None:
    events: list[tuple[str, dict[str, object]]] = [
        ("message_start", {"message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 2}}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "ok"}}),
        ("message_delta", {"delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 1}}),
        ("message_stop", {}),
    ]
    chunks = feed_all(StreamTranslator("text", created=5), events)
    assert [c["choices"][0]["text"] for c in chunks[:-1]] == ["ok", ""]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert {c["object"] for c in chunks} == {"text_completion"}
