"""What one request cost, and per-minute sums of it: the shape usage tracking and the
metrics history move around."""

from __future__ import annotations

from dataclasses import dataclass, field

from berth.core.latency import BUCKETS, bucket_of

MINUTE_MS = 60_000

UNATTRIBUTED = ""
"""The principal of sums kept only for the metrics history: requests to an endpoint without
``usage_tracking_config`` (or refused before their caller was known) are counted, but not per
caller, and usage reports leave them out."""


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
    latency_buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    """Requests per latency bucket (``berth.core.latency``), not cumulative."""

    def add(self, outcome: Outcome) -> None:
        self.requests += 1
        self.input_tokens += outcome.input_tokens
        self.output_tokens += outcome.output_tokens
        self.latency_ms += outcome.latency_ms
        self.latency_buckets[bucket_of(outcome.latency_ms)] += 1

    def merge(self, other: UsageSum) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.latency_ms += other.latency_ms
        self.latency_buckets = [
            a + b for a, b in zip(self.latency_buckets, other.latency_buckets, strict=True)
        ]


def minute_of(now_ms: int) -> int:
    return now_ms - now_ms % MINUTE_MS
