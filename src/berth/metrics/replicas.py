"""Replica-side figures (model latency, batch sizes), read from each ready replica when
metrics are scraped.

Replicas run the standard-library runtime, which keeps its own cumulative histograms of
``predict`` time and of requests per model call, and answers them as JSON on ``GET /metrics``;
summing them per served entity here keeps prometheus-client out of model environments.
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


FAMILIES = {
    "predict_seconds": (
        "berth_model_latency_seconds",
        "Time the model's predict took inside the replicas, by endpoint and served entity.",
    ),
    "batch_size": (
        "berth_model_batch_size",
        "Requests scored by each model call inside the replicas (batching), by endpoint and "
        "served entity.",
    ),
}
"""The replica's JSON key → the Prometheus family it becomes."""


class ReplicaFigures:
    """A collector of ``FAMILIES`` by endpoint and served entity."""

    def __init__(self, replicas: Callable[[], Sequence[ReplicaAddress]]) -> None:
        self._replicas = replicas

    def collect(self) -> Iterator[Metric]:
        sums: dict[str, dict[tuple[str, str], _Sum]] = {key: {} for key in FAMILIES}
        for replica in self._replicas():
            try:
                answer = _scrape(replica.address)
            except (httpx.HTTPError, ValueError):
                continue  # a replica that just stopped
            if not isinstance(answer, dict):
                continue
            for key, entities in sums.items():
                _add(entities, (replica.endpoint, replica.served_entity), answer.get(key))
        for key, (name, documentation) in FAMILIES.items():
            family = HistogramMetricFamily(
                name, documentation, labels=["endpoint", "served_entity"]
            )
            for (endpoint, entity), found in sorted(sums[key].items()):
                buckets = [(_le(b), c) for b, c in zip(found.bounds, found.counts, strict=True)]
                buckets.append(("+Inf", found.count))
                family.add_metric([endpoint, entity], buckets, found.total)
            yield family


def _scrape(address: str) -> object:
    """A replica's ``GET /metrics`` JSON; ``unix:/path`` addresses are Unix sockets."""
    if address.startswith("unix:"):
        transport = httpx.HTTPTransport(uds=address.removeprefix("unix:"))
        with httpx.Client(transport=transport, timeout=SCRAPE_TIMEOUT_S) as http:
            return http.get("http://replica/metrics").json()
    with httpx.Client(timeout=SCRAPE_TIMEOUT_S) as http:
        return http.get(f"http://{address}/metrics").json()


def _add(sums: dict[tuple[str, str], _Sum], key: tuple[str, str], figures: object) -> None:
    """One replica's histogram added to its entity's; skipped when absent (an older runtime)
    or shaped differently."""
    if not isinstance(figures, dict):
        return
    try:
        bounds = tuple(float(b) for b in figures["le"])
        counts = [int(c) for c in figures["counts"]]
        total, count = float(figures["sum"]), int(figures["count"])
    except (KeyError, TypeError, ValueError):
        return
    found = sums.setdefault(key, _Sum(bounds, [0] * len(bounds)))
    if found.bounds != bounds or len(counts) != len(bounds):
        return
    found.counts = [a + b for a, b in zip(found.counts, counts, strict=True)]
    found.total += total
    found.count += count


def _le(bound: float) -> str:
    return f"{bound:g}"
