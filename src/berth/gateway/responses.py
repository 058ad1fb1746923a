"""What the gateway itself sends: JSON answers, Databricks-shaped errors, server-sent events."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import Send

from berth.core.errors import BerthError
from berth.gateway.ratelimit_headers import LimitExceeded

Headers = list[tuple[bytes, bytes]]

SSE_HEADERS: Headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
OVERHEAD_HEADER = b"x-berth-overhead-ms"
"""The gateway's own share of the answer's time (the replica's is left out)."""


def ms_since(started: float) -> bytes:
    return f"{(time.perf_counter() - started) * 1000:.3f}".encode()


async def send_json(send: Send, status: int, payload: bytes, headers: Headers) -> None:
    await send_body(send, status, payload, b"application/json", headers)


async def send_body(
    send: Send, status: int, payload: bytes, content_type: bytes, headers: Headers
) -> None:
    headers = [
        *headers,
        (b"content-type", content_type),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def send_error(send: Send, exc: BerthError, started: float) -> None:
    headers = [
        *(exc.quota_headers() if isinstance(exc, LimitExceeded) else []),
        (OVERHEAD_HEADER, ms_since(started)),
    ]
    if exc.retry_after is not None:
        headers.append((b"retry-after", str(exc.retry_after).encode()))
    await send_json(send, exc.http_status, error_body(exc), headers)


def error_body(exc: BerthError) -> bytes:
    """The Databricks error, with OpenAI's ``error`` object beside it for OpenAI clients."""
    body: dict[str, object] = {
        **exc.to_json(),
        "error": {"message": exc.message, "type": exc.error_code, "code": exc.error_code},
    }
    return json.dumps(body).encode()


async def send_event(send: Send, chunk: Mapping[str, Any]) -> None:
    data = b"data: " + json.dumps(chunk).encode() + b"\n\n"
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def end_stream(send: Send) -> None:
    """Data-only SSE ends in ``data: [DONE]`` (MLflow's reader breaks on anything else)."""
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


async def end_stream_with_error(send: Send, exc: BerthError) -> None:
    """A stream that fails after its status line went out: an error event, then the end."""
    await send_event(send, {"error": {"message": exc.message, "code": exc.error_code}})
    await end_stream(send)
