"""Records for the inference-table tests: predictable ids, bodies and times."""

from __future__ import annotations

import json

from berth.inference import PayloadRecord

T0 = 1_700_000_000_000
"""2023-11-14T22:13:20Z."""


def record(
    i: int,
    *,
    endpoint: str = "ep",
    prefix: str = "req",
    timestamp_ms: int | None = None,
    request: bytes | None = None,
    response: bytes | None = None,
) -> PayloadRecord:
    return PayloadRecord(
        request_id=f"{prefix}-{i:06d}",
        client_request_id=f"client-{i}" if i % 2 else None,
        endpoint=endpoint,
        served_entity="sum-1",
        principal="alice@example.com",
        timestamp_ms=T0 + i if timestamp_ms is None else timestamp_ms,
        status_code=200 if i % 10 else 500,
        latency_ms=i / 4,
        request=json.dumps({"inputs": [i, "é"]}).encode() if request is None else request,
        response=json.dumps({"predictions": [i * 2]}).encode() if response is None else response,
        input_tokens=i,
        output_tokens=2 * i,
        error=None if i % 10 else f"replica failed on {i}",
    )
