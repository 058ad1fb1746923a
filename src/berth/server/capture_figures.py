"""The inference-table writer's counters as metrics, read at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

from berth.inference import CaptureWriter


class CaptureFigures:
    """``berth_capture_rows_total`` by endpoint and outcome (written, dropped)."""

    def __init__(self, writer: CaptureWriter) -> None:
        self._writer = writer

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "berth_capture_rows",
            "Inference-table rows by endpoint and outcome: written, or dropped (sampled in "
            "but the writer had fallen behind, or a write failed).",
            labels=["endpoint", "outcome"],
        )
        for endpoint, counts in sorted(self._writer.counts().items()):
            family.add_metric([endpoint, "written"], counts.rows_written)
            family.add_metric([endpoint, "dropped"], counts.rows_dropped)
        yield family
