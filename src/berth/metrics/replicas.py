"""Replica-side figures (model latency), read from each ready replica when metrics are scraped.

Replicas run the standard-library runtime, which keeps its own cumulative histogram of
``predict`` time and answers it as JSON on ``GET /metrics``; summing them per served entity
here keeps prometheus-client out of model environments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import httpx
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.metrics_core import Metric

SCRAPE_TIMEOUT_S = 0.5


@dataclass(frozen=True, slots=True)
class ReplicaAddress:
    endpoint: str
    served_entity: str
    address: str


@dataclass
class _Sum:
    bounds: tuple[float, ...]
    counts: list[int]
    total: float = 0.0
    count: int = 0


class ReplicaFigures:
    """A collector: ``berth_model_latency_seconds`` by endpoint and served entity."""

    def __init__(self, replicas: Callable[[], Sequence[ReplicaAddress]]) -> None:
        self._replicas = replicas

    def collect(self) -> Iterator[Metric]:
        sums: dict[tuple[str, str], _Sum] = {}
        with httpx.Client(timeout=SCRAPE_TIMEOUT_S) as http:
            for replica in self._replicas():
                try:
                    figures = http.get(f"http://{replica.address}/metrics").json()[
                        "predict_seconds"
                    ]
                except (httpx.HTTPError, ValueError, KeyError, TypeError):
                    continue  # a replica that just stopped, or an older runtime
                key = (replica.endpoint, replica.served_entity)
                bounds = tuple(float(b) for b in figures["le"])
                found = sums.setdefault(key, _Sum(bounds, [0] * len(bounds)))
                if found.bounds != bounds:
                    continue
                found.counts = [
                    a + int(b) for a, b in zip(found.counts, figures["counts"], strict=True)
                ]
                found.total += float(figures["sum"])
                found.count += int(figures["count"])
        family = HistogramMetricFamily(
            "berth_model_latency_seconds",
            "Time the model's predict took inside the replicas, by endpoint and served entity.",
            labels=["endpoint", "served_entity"],
        )
        for (endpoint, entity), found in sorted(sums.items()):
            buckets = [(_le(b), c) for b, c in zip(found.bounds, found.counts, strict=True)]
            buckets.append(("+Inf", found.count))
            family.add_metric([endpoint, entity], buckets, found.total)
        yield family


def _le(bound: float) -> str:
    return f"{bound:g}"
