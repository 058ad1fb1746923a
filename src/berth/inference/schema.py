"""One captured request: the record the gateway hands in and the Arrow schema of its Parquet row.

Each column's meaning travels in the files' field metadata, so a table read by DuckDB or pandas
describes itself, and `schema_description` is generated from the same place.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class PayloadRecord:
    """One answered or failed request, as the data plane saw it.

    Bodies are the bytes that crossed the wire, because that is what the gateway holds: decoding
    them to text is left to the writer's thread, off the request path.
    """

    request_id: str
    endpoint: str
    served_entity: str
    principal: str
    timestamp_ms: int
    """When the request arrived, epoch milliseconds (UTC); it also picks the date partition."""
    status_code: int
    latency_ms: float
    request: bytes
    response: bytes
    """The answer's body; a streamed answer is passed reassembled (its events joined)."""
    client_request_id: str | None = None
    """The caller's own id, from the body's ``client_request_id`` or its header."""
    input_tokens: int = 0
    output_tokens: int = 0
    ttft_ms: float | None = None
    """An answer with generated text: from arrival to its first token sent on."""
    itl_ms: float | None = None
    """A stream: the mean gap between its tokens after the first."""
    error: str | None = None
    """The error message of a failed request."""


def _column(name: str, type_: Any, meaning: str, *, nullable: bool = False) -> Any:
    pa = _pyarrow()
    return pa.field(name, type_, nullable=nullable, metadata={"description": meaning})


def _pyarrow() -> Any:
    """pyarrow, imported when a table is first written or read: it is ~40 MB of a server that
    may never capture anything."""
    import pyarrow  # type: ignore[import-untyped]

    return pyarrow


@functools.cache
def arrow_schema() -> Any:
    """The columns of every Parquet file, in order."""
    pa = _pyarrow()
    return pa.schema(
        [
            _column("request_id", pa.string(), "berth's id of the request, unique per request"),
            _column(
                "client_request_id",
                pa.string(),
                "the caller's own id (body field or header client_request_id); null when not given",
                nullable=True,
            ),
            _column("endpoint", pa.string(), "the serving endpoint queried"),
            _column("served_entity", pa.string(), "the served entity (model) that answered"),
            _column(
                "principal", pa.string(), "the user or service principal that sent the request"
            ),
            _column(
                "timestamp_ms", pa.int64(), "when the request arrived, epoch milliseconds, UTC"
            ),
            _column("status_code", pa.int32(), "the HTTP status of the answer"),
            _column(
                "latency_ms", pa.float64(), "milliseconds from arrival to the end of the answer"
            ),
            _column(
                "request",
                pa.string(),
                "the request body as UTF-8 text, cut at the capture limit on a character boundary",
            ),
            _column(
                "response",
                pa.string(),
                "the response body as UTF-8 text (a stream reassembled), cut like request",
            ),
            _column("request_truncated", pa.bool_(), "true when request was cut at the limit"),
            _column("response_truncated", pa.bool_(), "true when response was cut at the limit"),
            _column(
                "input_tokens", pa.int64(), "prompt tokens the answer reported; 0 when unknown"
            ),
            _column("output_tokens", pa.int64(), "tokens generated; 0 when unknown"),
            _column(
                "error",
                pa.string(),
                "the error message of a failed request; null when it succeeded",
                nullable=True,
            ),
            _column(
                "ttft_ms",
                pa.float64(),
                "milliseconds from arrival to the first generated token sent on (a whole answer: "
                "to the answer); null without generated text, and in files written before berth "
                "kept it",
                nullable=True,
            ),
            _column(
                "itl_ms",
                pa.float64(),
                "a stream's mean milliseconds between generated tokens after the first; null for "
                "a whole answer",
                nullable=True,
            ),
        ]
    )


@functools.cache
def partition_field() -> Any:
    return _column(
        "date",
        _pyarrow().date32(),
        "the UTC day of timestamp_ms; the directory date=YYYY-MM-DD, a column when read as a "
        "hive-partitioned dataset",
    )
