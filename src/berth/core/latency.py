"""The latency histogram buckets every berth figure uses, so the gateway's histograms, the
replicas' own (summed by the server) and the per-minute usage sums line up; and the quantile
of such a histogram. Standard library only: the runtime imports it."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

LATENCY_BOUNDS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
"""Upper bounds in seconds, from half a millisecond to thirty seconds."""

LATENCY_BOUNDS_MS = tuple(round(bound * 1000, 3) for bound in LATENCY_BOUNDS)
BUCKETS = len(LATENCY_BOUNDS_MS) + 1
"""Counts per bucket of a usage sum: one per bound, then one past the last (``+Inf``)."""


def bucket_of(latency_ms: float) -> int:
    """The bucket ``latency_ms`` is counted in: the first whose upper bound holds it."""
    return bisect_left(LATENCY_BOUNDS_MS, latency_ms)


def quantile(q: float, counts: Sequence[int]) -> float | None:
    """The ``q`` quantile (0..1) in ms of a histogram of ``BUCKETS`` per-bucket (not
    cumulative) counts, as Prometheus' ``histogram_quantile`` reads it: linear within the
    bucket the rank falls in, the first bucket starting at 0, and a rank past the last bound
    answered as that bound. None when the histogram counts nothing."""
    total = sum(counts)
    if total == 0:
        return None
    rank = min(max(q, 0.0), 1.0) * total
    index = below = 0
    while not counts[index] or below + counts[index] < rank:
        below += counts[index]
        index += 1
    if index == len(LATENCY_BOUNDS_MS):
        return LATENCY_BOUNDS_MS[-1]
    lower = LATENCY_BOUNDS_MS[index - 1] if index else 0.0
    upper = LATENCY_BOUNDS_MS[index]
    return lower + (upper - lower) * (rank - below) / counts[index]
