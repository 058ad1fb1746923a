"""The metric families and how they are rendered, whole or for one endpoint."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from berth.core.latency import LATENCY_BOUNDS
from berth.metrics.processes import Summed

STAGES = (
    "auth", "rate_limit", "band_wait", "queue_wait", "upstream", "batching", "streaming",
)  # fmt: skip
"""Where a request's time goes: checking the token, the rate limiter, waiting for an open
LLM's provisioned throughput, waiting for a free replica, the replica or provider answering,
the part of that spent waiting in the replica for a batch to fill, relaying a stream after its
first byte."""
TOKEN_GAP_BOUNDS = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
)  # fmt: skip
"""Upper bounds in seconds of the gap between two generated tokens."""

PASS_STAGES = (
    "read", "target", "autoscale", "plan", "execute", "publish", "record", "retire", "history",
)  # fmt: skip
"""The stages of one controller pass: reading the store, building each endpoint's target,
sizing entities, observing replicas and planning, starting replicas, publishing routes,
recording rollout transitions, retiring replicas nobody routes to, keeping replica counts per
minute."""


class Metrics:
    """Every family of one process, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._rendered: Collector = self.registry
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
            multiprocess_mode="livesum",  # gateway workers: summed over the live ones
        )
        self.queue_depth = Gauge(
            "berth_queue_depth",
            "Requests waiting for a free replica, by endpoint.",
            ["endpoint"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.tokens = Counter(
            "berth_tokens",
            "LLM tokens, by endpoint, served entity and direction (in = prompt, out = "
            "completion); rate() gives tokens/s.",
            ["endpoint", "served_entity", "direction"],
            registry=r,
        )
        self.ttft = Histogram(
            "berth_llm_time_to_first_token_seconds",
            "From a request's arrival to the first generated token sent on (a whole answer: "
            "to the answer), by endpoint and served entity.",
            ["endpoint", "served_entity"],
            buckets=LATENCY_BOUNDS,
            registry=r,
        )
        self.itl = Histogram(
            "berth_llm_inter_token_latency_seconds",
            "Mean gap between a stream's generated tokens after the first, per request, by "
            "endpoint and served entity.",
            ["endpoint", "served_entity"],
            buckets=TOKEN_GAP_BOUNDS,
            registry=r,
        )
        self.llm_queue_depth = Gauge(
            "berth_llm_queue_depth",
            "Requests for an open LLM waiting for its provisioned throughput or a free engine "
            "slot, by endpoint and served entity.",
            ["endpoint", "served_entity"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.llm_slots = Gauge(
            "berth_llm_engine_slots_in_use",
            "Engine slots decoding a request of an open LLM, by endpoint and served entity.",
            ["endpoint", "served_entity"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.capture_rows = Counter(
            "berth_capture_rows",
            "Inference-table rows by endpoint and outcome: written, or dropped (sampled in "
            "but the writer had fallen behind, or a write failed).",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.replicas = Gauge(
            "berth_replicas",
            "Replicas by endpoint, served entity and state.",
            ["endpoint", "served_entity", "state"],
            registry=r,
        )
        self.desired_replicas = Gauge(
            "berth_replicas_desired",
            "Replicas the autoscaler wants, by endpoint and served entity.",
            ["endpoint", "served_entity"],
            registry=r,
        )
        self.demand = Gauge(
            "berth_autoscaler_concurrency",
            "Smoothed concurrent requests the autoscaler sizes for, by endpoint and served entity.",
            ["endpoint", "served_entity"],
            registry=r,
        )
        self.pass_stage = Histogram(
            "berth_controller_stage_seconds",
            "Time spent in each stage of a controller pass: " + ", ".join(PASS_STAGES) + ".",
            ["stage"],
            buckets=LATENCY_BOUNDS,
            registry=r,
        )
        self.pass_failures = Counter(
            "berth_controller_stage_failures",
            "Failures in each stage of controller passes, which go on without that stage's "
            "result (for one endpoint or replica where the failure was its alone).",
            ["stage"],
            registry=r,
        )
        for stage in PASS_STAGES:  # every stage is shown, at 0 until it fails
            self.pass_failures.labels(stage)
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

    def count_capture(self, endpoint: str, outcome: str, rows: int) -> None:
        """The inference-table writer's ``on_tally``."""
        self.capture_rows.labels(endpoint, outcome).inc(rows)

    def add(self, collector: Collector) -> None:
        """Another source of families (replica-side figures), read at each scrape."""
        self.registry.register(collector)

    def include_processes(self, directory: Path) -> None:
        """Render also what other processes count in prometheus-client's multiprocess files
        under ``directory`` (gateway workers), summed with this process's own samples."""
        self._rendered = Summed(self.registry, directory)

    def render(self, endpoint: str | None = None) -> bytes:
        """The text exposition format: every family, or only ``endpoint``'s samples."""
        if endpoint is None:
            return generate_latest(self._rendered)
        return generate_latest(_Only(self._rendered, endpoint))


class _Only:
    """A registry view keeping the samples labelled with one endpoint."""

    def __init__(self, registry: Collector, endpoint: str) -> None:
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
