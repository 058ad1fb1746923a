"""The metric families and how they are rendered, whole or for one endpoint."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from berth.core.latency import LATENCY_BOUNDS

STAGES = ("auth", "rate_limit", "queue_wait", "upstream", "streaming")
"""Where a request's time goes: checking the token, the rate limiter, waiting for a free
replica, the replica or provider answering, relaying a stream after its first byte."""


class Metrics:
    """Every family of one process, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "berth_requests",
            "Data-plane requests answered, by endpoint, served entity and HTTP status.",
            ["endpoint", "served_entity", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "berth_request_duration_seconds",
            "Time from a request's arrival to its last byte, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BOUNDS,
            registry=r,
        )
        self.stage = Histogram(
            "berth_request_stage_seconds",
            "Time spent in each stage of a request: " + ", ".join(STAGES) + ".",
            ["endpoint", "stage"],
            buckets=LATENCY_BOUNDS,
            registry=r,
        )
        self.in_flight = Gauge(
            "berth_in_flight_requests",
            "Requests being answered now, by endpoint.",
            ["endpoint"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "berth_queue_depth",
            "Requests waiting for a free replica, by endpoint.",
            ["endpoint"],
            registry=r,
        )
        self.tokens = Counter(
            "berth_tokens",
            "LLM tokens, by endpoint and direction (in = prompt, out = completion).",
            ["endpoint", "direction"],
            registry=r,
        )
        self.replicas = Gauge(
            "berth_replicas",
            "Replicas by endpoint, served entity and state.",
            ["endpoint", "served_entity", "state"],
            registry=r,
        )
        self.env_builds = Counter(
            "berth_environment_builds",
            "Model environment builds by result (built, failed).",
            ["result"],
            registry=r,
        )
        self.env_build_seconds = Histogram(
            "berth_environment_build_seconds",
            "Time to build a model environment with uv.",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )

    def add(self, collector: Collector) -> None:
        """Another source of families (replica-side figures), read at each scrape."""
        self.registry.register(collector)

    def render(self, endpoint: str | None = None) -> bytes:
        """The text exposition format: every family, or only ``endpoint``'s samples."""
        if endpoint is None:
            return generate_latest(self.registry)
        return generate_latest(_Only(self.registry, endpoint))


class _Only:
    """A registry view keeping the samples labelled with one endpoint."""

    def __init__(self, registry: CollectorRegistry, endpoint: str) -> None:
        self._registry = registry
        self._endpoint = endpoint

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            samples = _mine(family.samples, self._endpoint)
            if samples:
                kept = Metric(family.name, family.documentation, family.type, family.unit)
                kept.samples = samples
                yield kept


def _mine(samples: Iterable[Sample], endpoint: str) -> list[Sample]:
    return [sample for sample in samples if sample.labels.get("endpoint") == endpoint]
