"""The latency histogram of the usage sums, and its quantiles read as Prometheus reads them."""

from __future__ import annotations

import pytest

from berth.core.latency import BUCKETS, LATENCY_BOUNDS, LATENCY_BOUNDS_MS, bucket_of, quantile
from berth.core.usage import Outcome, UsageSum


def counts(**at: int) -> list[int]:
    """A histogram with ``at['b<i>']`` requests in bucket ``i``."""
    found = [0] * BUCKETS
    for name, count in at.items():
        found[int(name[1:])] = count
    return found


def test_the_buckets_are_the_prometheus_families_in_milliseconds() -> None:
    assert LATENCY_BOUNDS_MS[:3] == (0.5, 1.0, 2.5) and LATENCY_BOUNDS_MS[-1] == 30_000
    assert len(LATENCY_BOUNDS) == 15 and BUCKETS == 16


@pytest.mark.parametrize(
    ("latency_ms", "bucket"),
    [(0.0, 0), (0.5, 0), (0.51, 1), (1.0, 1), (7.0, 4), (100.0, 7), (30_000, 14), (30_001, 15)],
)
def test_a_latency_counts_in_the_first_bucket_whose_bound_holds_it(
    latency_ms: float, bucket: int
) -> None:
    assert bucket_of(latency_ms) == bucket


def test_no_request_has_no_quantile() -> None:
    assert quantile(0.5, [0] * BUCKETS) is None


def test_quantiles_interpolate_within_the_bucket_the_rank_falls_in() -> None:
    # 100 requests between 50 and 100 ms (bucket 7): the median is halfway, p99 near the top.
    histogram = counts(b7=100)
    assert quantile(0.5, histogram) == pytest.approx(75.0)
    assert quantile(0.99, histogram) == pytest.approx(99.5)
    # 90 fast (<= 0.5 ms, from 0) and 10 slow (250-500 ms): p50 among the fast, p99 the slow.
    histogram = counts(b0=90, b9=10)
    assert quantile(0.5, histogram) == pytest.approx(0.5 * 50 / 90)
    assert quantile(0.99, histogram) == pytest.approx(250 + 250 * 9 / 10)
    assert quantile(0.9, histogram) == pytest.approx(0.5)  # the rank ends the first bucket


def test_a_rank_past_the_last_bound_answers_that_bound() -> None:
    assert quantile(0.99, counts(b3=1, b15=99)) == LATENCY_BOUNDS_MS[-1]
    assert quantile(1.5, counts(b3=4)) == LATENCY_BOUNDS_MS[3]  # held to 0..1


def test_a_usage_sum_counts_each_request_in_its_bucket_and_merges() -> None:
    first, second = UsageSum(), UsageSum()
    for latency_ms in (3.0, 4.0, 700.0):
        first.add(Outcome("ep", "a", "ann", 200, latency_ms, 2, 5))
    second.add(Outcome("ep", "a", "bob", 500, 40_000.0))
    first.merge(second)
    assert (first.requests, first.input_tokens, first.output_tokens) == (4, 6, 15)
    assert first.latency_ms == pytest.approx(40_707.0)
    assert first.latency_buckets == counts(b3=2, b10=1, b15=1)
