"""What one request cost, and per-minute sums of it: the shape usage tracking moves around."""

from __future__ import annotations

from dataclasses import dataclass

MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Outcome:
    """One answered request, as the data plane saw it."""

    endpoint: str
    """The endpoint's id, not its name: a later endpoint of the same name starts afresh."""
    served_entity: str
    principal: str
    status: int
    latency_ms: float
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class UsageKey:
    minute: int
    """Epoch milliseconds at the start of the minute (UTC)."""
    endpoint: str
    """The endpoint's id (rows stored before ids were used hold its name)."""
    served_entity: str
    principal: str
    status: int


@dataclass(slots=True)
class UsageSum:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0

    def add(self, outcome: Outcome) -> None:
        self.requests += 1
        self.input_tokens += outcome.input_tokens
        self.output_tokens += outcome.output_tokens
        self.latency_ms += outcome.latency_ms


def minute_of(now_ms: int) -> int:
    return now_ms - now_ms % MINUTE_MS
