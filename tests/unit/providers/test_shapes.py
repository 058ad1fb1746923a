"""Usage, embeddings encoding, stream usage placement, SSE reading and error mapping."""

from __future__ import annotations

import array
import asyncio
import base64
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import pytest

from berth.core.errors import BadRequest, DeadlineExceeded, RateLimited, Unavailable
from berth.providers import ProviderCredentialsRejected
from berth.providers.errors import retry_after_s, scrub, upstream_error
from berth.providers.shapes import embeddings_response, settle_usage, usage_of
from berth.providers.sse import ServerEvent, read_events


def test_missing_usage_counts_are_zero_not_estimated() -> None:
    assert usage_of(None) == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert usage_of({"prompt_tokens": 3, "completion_tokens": 2})["total_tokens"] == 5


def test_base64_embeddings_are_little_endian_float32() -> None:
    answer = embeddings_response({"data": [{"index": 0, "embedding": [0.5, -1.25]}]}, "base64")
    raw = base64.b64decode(answer["data"][0]["embedding"])
    assert raw == b"\x00\x00\x00?\x00\x00\xa0\xbf"
    assert array.array("f", raw).tolist() == [0.5, -1.25]
    assert answer["usage"] == {"prompt_tokens": 0, "total_tokens": 0}


def test_base64_from_upstream_is_decoded_for_a_float_caller() -> None:
    encoded = embeddings_response({"data": [{"embedding": [0.25, 2.0]}]}, "base64")
    assert embeddings_response(encoded, "float")["data"][0]["embedding"] == [0.25, 2.0]


async def chunks_of(*chunks: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
    for chunk in chunks:
        yield chunk


def settled(usage_chunk: bool, *chunks: dict[str, Any]) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        return [c async for c in settle_usage(chunks_of(*chunks), usage_chunk)]

    return asyncio.run(run())


FIRST = {"id": "c", "object": "chat.completion.chunk", "choices": [{"delta": {"content": "a"}}]}
LAST = {"id": "c", "object": "chat.completion.chunk", "choices": [{"finish_reason": "stop"}]}
USAGE = {"id": "c", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}


def test_usage_rides_on_the_last_chunk_unless_a_usage_chunk_was_asked() -> None:
    folded = settled(False, FIRST, LAST, USAGE)
    assert len(folded) == 2 and folded[-1]["usage"]["total_tokens"] == 3
    apart = settled(True, FIRST, LAST, USAGE)
    assert apart[-1] == {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }


def test_a_stream_without_usage_gets_zeros() -> None:
    assert settled(False, FIRST, LAST)[-1]["usage"]["total_tokens"] == 0
    assert settled(True)[:] == []


def test_sse_events_with_and_without_names() -> None:
    lines = ["event: message_start", 'data: {"a": 1}', "", ": comment", "data: [DONE]"]

    async def run() -> list[ServerEvent]:
        async def source() -> AsyncGenerator[str, None]:
            for line in lines:
                yield line

        return [event async for event in read_events(source())]

    assert asyncio.run(run()) == [
        ServerEvent("message_start", '{"a": 1}'),
        ServerEvent("message", "[DONE]"),
    ]


def test_keys_are_scrubbed_from_messages() -> None:
    text = "Incorrect API key provided: sk-live-abcdef123. Also the key tok3n-value."
    assert scrub(text, ["tok3n-value"]) == "Incorrect API key provided: ***. Also the key ***."


def test_retry_after_in_seconds_milliseconds_and_as_a_date() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_s({"retry-after": "2"}) == 2.0
    assert retry_after_s({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    later = {"retry-after": "Wed, 01 Jan 2025 00:00:30 GMT"}
    assert retry_after_s(later, now) == 30.0
    assert retry_after_s({}) is None


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequest),
        (401, ProviderCredentialsRejected),
        (403, ProviderCredentialsRejected),
        (429, RateLimited),
        (503, Unavailable),
        (529, Unavailable),
        (504, DeadlineExceeded),
    ],
)
def test_statuses_map_to_berth_errors(status: int, error: type[Exception]) -> None:
    body = b'{"type": "error", "error": {"type": "x", "message": "It failed"}}'
    raised = upstream_error("anthropic", status, body, 1.2, [])
    assert type(raised) is error
    assert f"anthropic provider answered {status}: It failed" in raised.message


def test_rate_limited_carries_the_wait_rounded_up() -> None:
    raised = upstream_error("openai", 429, b"not json", 1.2, [])
    assert raised.retry_after == 2 and "not json" in raised.message
