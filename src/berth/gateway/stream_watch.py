"""What the gateway reads of an event stream it relays, without holding a byte of it back:
the usage the model reports, and when generated text reached the caller.

Time to first token is from the request's arrival at the gateway to the first event carrying
generated text (a chat delta's ``content``, a completion's ``text``); inter-token latency is
the mean gap between such events after the first. A whole answer brings every token at once:
its time to first token is the time to the answer, and it has no inter-token latency.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from berth.gateway import json_body
from berth.gateway.exchange import Served

DATA = b"data: "
MAX_PENDING_BYTES = 1 << 20
"""Most of one event kept while its end has not arrived; an event past it is not read."""


class StreamWatch:
    """Fed each relayed chunk; chunks split events anywhere, so the unfinished last line of
    one is kept for the next."""

    __slots__ = ("_served", "_started", "_pending", "_first", "_last", "_texts")

    def __init__(self, served: Served, started: float) -> None:
        """``served`` takes the usage and timings; ``started`` is the request's arrival
        (``time.perf_counter``)."""
        self._served = served
        self._started = started
        self._pending = b""
        self._first = 0.0
        self._last = 0.0
        self._texts = 0
        """Events with generated text seen so far."""

    def saw(self, chunk: bytes) -> None:
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > MAX_PENDING_BYTES:
            self._pending = b""
        now = time.perf_counter()
        for line in lines:
            if line.startswith(DATA + b"{"):
                self._event(line[len(DATA) :], now)

    def finish(self) -> None:
        """The stream is over: its timings onto the served record."""
        if self._texts:
            self._served.ttft_ms = (self._first - self._started) * 1000
        if self._texts > 1:
            self._served.itl_ms = (self._last - self._first) * 1000 / (self._texts - 1)

    def _event(self, payload: bytes, now: float) -> None:
        if b'"usage"' not in payload and b'"content"' not in payload and b'"text"' not in payload:
            return
        with contextlib.suppress(ValueError):
            event = json_body.loads(payload)
            if not isinstance(event, dict):
                return
            if event.get("usage"):
                self._served.count(event["usage"])
            if _has_text(event.get("choices")):
                if not self._texts:
                    self._first = now
                self._last = now
                self._texts += 1


def _has_text(choices: Any) -> bool:
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if isinstance(text, str) and text:
            return True
    return False
