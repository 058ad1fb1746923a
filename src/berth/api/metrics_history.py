"""The metrics history of one endpoint: its per-minute usage sums and replica samples, as
series a chart plots without gaps (a minute without traffic is zeros, not missing).

Pure: the route reads the store, this shapes what was read. Percentiles come from each
minute's latency histogram, summed over callers, statuses and (for the total) entities.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from berth.api.schemas.metrics_history import MetricsHistory, Series
from berth.core.latency import quantile
from berth.core.usage import MINUTE_MS, UsageKey, UsageSum, minute_of
from berth.store.replica_history import ReplicaSample

SHORTEST_S = 1.0
"""The least a minute's rates divide by: a minute a few milliseconds old has nothing to rate."""


@dataclass(frozen=True, slots=True)
class Window:
    """``count`` whole minutes, the last of them the one ``now_ms`` falls in."""

    first: int
    count: int
    now_ms: int

    @classmethod
    def ending_at(cls, now_ms: int, count: int) -> Window:
        return cls(minute_of(now_ms) - (count - 1) * MINUTE_MS, count, now_ms)

    @property
    def end(self) -> int:
        """Where the window ends: the end of the minute now is in."""
        return self.first + self.count * MINUTE_MS

    @property
    def last_minute_s(self) -> float:
        return max((self.now_ms - (self.end - MINUTE_MS)) / 1000, SHORTEST_S)

    def index(self, minute: int) -> int | None:
        if self.first <= minute < self.end:
            return (minute - self.first) // MINUTE_MS
        return None


class _Minutes:
    """One series' sums per minute of the window, as they are read."""

    def __init__(self, count: int) -> None:
        self.sums = [UsageSum() for _ in range(count)]
        self.errors = [0] * count
        self.server_errors = [0] * count
        self.ready: list[int | None] = [None] * count
        self.desired: list[int | None] = [None] * count

    def add(self, index: int, status: int, value: UsageSum) -> None:
        self.sums[index].merge(value)
        if status >= 400:
            self.errors[index] += value.requests
        if status >= 500:
            self.server_errors[index] += value.requests

    def series(self, seconds: Sequence[float]) -> Series:
        def rate(counts: Iterable[float]) -> list[float]:
            return [round(count / s, 3) for count, s in zip(counts, seconds, strict=True)]

        def percentile(q: float) -> list[float | None]:
            found = (quantile(q, s.latency_buckets) for s in self.sums)
            return [None if ms is None else round(ms, 3) for ms in found]

        return Series(
            requests=[s.requests for s in self.sums],
            errors=self.errors,
            requests_per_s=rate(s.requests for s in self.sums),
            errors_per_s=rate(self.errors),
            server_errors_per_s=rate(self.server_errors),
            p50_ms=percentile(0.5),
            p99_ms=percentile(0.99),
            input_tokens_per_s=rate(s.input_tokens for s in self.sums),
            output_tokens_per_s=rate(s.output_tokens for s in self.sums),
            replicas_current=self.ready,
            replicas_desired=self.desired,
        )


def history(
    window: Window,
    usage: Iterable[tuple[UsageKey, UsageSum]],
    replicas: Iterable[ReplicaSample],
    configured: Sequence[str],
) -> MetricsHistory:
    """The series of each entity ``configured`` (in that order), then of any other entity the
    sums or samples name (by name), and their total."""
    entities = {name: _Minutes(window.count) for name in configured}
    total = _Minutes(window.count)
    for key, value in usage:
        index = window.index(key.minute)
        if index is None:
            continue
        total.add(index, key.status, value)
        if key.served_entity:  # none when refused before one was chosen
            entity = entities.get(key.served_entity) or _new(entities, key.served_entity, window)
            entity.add(index, key.status, value)
    for sample in replicas:
        index = window.index(sample.minute)
        if index is None:
            continue
        entity = entities.get(sample.served_entity) or _new(entities, sample.served_entity, window)
        entity.ready[index], entity.desired[index] = sample.ready, sample.desired
    total.ready = _summed(window.count, (e.ready for e in entities.values()))
    total.desired = _summed(window.count, (e.desired for e in entities.values()))
    named = [*configured, *sorted(set(entities) - set(configured))]
    seconds = [60.0] * (window.count - 1) + [window.last_minute_s]
    return MetricsHistory(
        step_s=MINUTE_MS // 1000,
        now_ms=window.now_ms,
        minutes=[window.first + i * MINUTE_MS for i in range(window.count)],
        last_minute_s=round(window.last_minute_s, 3),
        series={name: entities[name].series(seconds) for name in named},
        total=total.series(seconds),
    )


def _new(entities: dict[str, _Minutes], name: str, window: Window) -> _Minutes:
    entities[name] = found = _Minutes(window.count)
    return found


def _summed(count: int, columns: Iterable[list[int | None]]) -> list[int | None]:
    """Per minute, the sum of the values present; None where none is."""
    sums: list[int | None] = [None] * count
    for column in columns:
        for index, value in enumerate(column):
            if value is not None:
                sums[index] = (sums[index] or 0) + value
    return sums
