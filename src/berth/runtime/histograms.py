"""The replica's own cumulative histograms, answered as JSON on ``GET /metrics``: the server
sums them across replicas (the runtime cannot carry prometheus-client)."""

from __future__ import annotations

from typing import Any

BATCH_SIZE_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128)
"""Upper bounds of the batch-size histogram: requests that shared one model call."""


class Histogram:
    """Counts per upper bound, cumulative as Prometheus buckets count; ``count`` is the
    ``+Inf`` bucket."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "le": list(self.bounds),
            "counts": self.counts,
            "count": self.count,
            "sum": self.total,
        }
