"""Per-request stage timings, gathered without threading a timer through every call.

The gateway opens a request's record with ``begin()``; any code that request runs (on its
task, and so in its context) adds to it with ``with stage("queue_wait"): ...``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[dict[str, float]] = ContextVar("berth_request_stages")
_request_id: ContextVar[str] = ContextVar("berth_request_id", default="")


def begin(request_id: str) -> dict[str, float]:
    """A fresh record for the request running in this context; seconds by stage."""
    record: dict[str, float] = {}
    _current.set(record)
    _request_id.set(request_id)
    return record


def request_id() -> str:
    """The id of the request running in this context (sent on to replicas)."""
    return _request_id.get()


@contextmanager
def stage(name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        add(name, time.perf_counter() - started)


def add(name: str, seconds: float) -> None:
    """Count ``seconds`` to stage ``name`` of the request running in this context."""
    record = _current.get(None)
    if record is not None:
        record[name] = record.get(name, 0.0) + seconds
