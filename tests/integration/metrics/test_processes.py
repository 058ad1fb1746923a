"""A server's metrics summed with what another process counted in prometheus-client's
multiprocess files, as gateway workers do: one family per name, samples added together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from berth.metrics import Metrics

pytestmark = pytest.mark.integration

WORKER = """
from berth.metrics import Metrics
m = Metrics()
m.requests.labels("ep", "ep-1", "200").inc(3)
m.requests.labels("other", "other-1", "500").inc()
m.duration.labels("ep").observe(0.2)
m.in_flight.labels("ep").inc(2)
m.count_capture("ep", "written", 7)
"""


def counted_elsewhere(directory: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", WORKER], env=env, check=True)


def samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_samples_of_both_processes_add_up_in_one_family_each(tmp_path: Path) -> None:
    counted_elsewhere(tmp_path)
    metrics = Metrics()
    metrics.requests.labels("ep", "ep-1", "200").inc(2)
    metrics.duration.labels("ep").observe(0.4)
    metrics.replicas.labels("ep", "ep-1", "READY").set(1)
    metrics.include_processes(tmp_path)

    text = metrics.render()
    found = samples(text)
    ok = frozenset({"endpoint": "ep", "served_entity": "ep-1", "status": "200"}.items())
    assert found["berth_requests_total", ok] == 5
    failed = frozenset({"endpoint": "other", "served_entity": "other-1", "status": "500"}.items())
    assert found["berth_requests_total", failed] == 1
    ep = frozenset({"endpoint": "ep"}.items())
    assert found["berth_request_duration_seconds_count", ep] == 2
    assert found["berth_request_duration_seconds_sum", ep] == 0.2 + 0.4
    assert found["berth_in_flight_requests", ep] == 2
    written = frozenset({"endpoint": "ep", "outcome": "written"}.items())
    assert found["berth_capture_rows_total", written] == 7
    ready = frozenset({"endpoint": "ep", "served_entity": "ep-1", "state": "READY"}.items())
    assert found["berth_replicas", ready] == 1
    assert text.count(b"# TYPE berth_requests_total counter") == 1

    only = samples(metrics.render("ep"))
    assert only["berth_requests_total", ok] == 5
    assert all(dict(labels)["endpoint"] == "ep" for _, labels in only)
