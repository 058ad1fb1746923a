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


def begin() -> dict[str, float]:
    """A fresh record for the request running in this context; seconds by stage."""
    record: dict[str, float] = {}
    _current.set(record)
    return record


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
