"""The metrics history's series: every minute of the window, per entity and in total, rates
over the seconds each minute covered, percentiles from the summed histograms."""

from __future__ import annotations

import pytest

from berth.api.metrics_history import Window, history
from berth.core.usage import MINUTE_MS, UNATTRIBUTED, Outcome, UsageKey, UsageSum
from berth.store.replica_history import ReplicaSample

NOW = 1_700_000_040_000 + 30_000
"""Thirty seconds into a minute."""
THIS_MINUTE = NOW - NOW % MINUTE_MS


def sums(status: int, *latencies_ms: float, tokens: tuple[int, int] = (0, 0)) -> UsageSum:
    found = UsageSum()
    for latency in latencies_ms:
        found.add(Outcome("ep-id", "", "", status, latency, *tokens))
    return found


def key(minutes_ago: int, entity: str, status: int = 200, who: str = "ann") -> UsageKey:
    return UsageKey(THIS_MINUTE - minutes_ago * MINUTE_MS, "ep-id", entity, who, status)


def test_every_minute_of_the_window_is_present_oldest_first() -> None:
    window = Window.ending_at(NOW, 5)
    found = history(window, [], [], ["a"])
    assert found.step_s == 60 and found.now_ms == NOW
    assert found.minutes == [THIS_MINUTE - i * MINUTE_MS for i in (4, 3, 2, 1, 0)]
    assert found.last_minute_s == 30.0
    (name,) = found.series
    series = found.series[name]
    assert name == "a" and series.requests == [0] * 5 and series.requests_per_s == [0.0] * 5
    assert series.p50_ms == [None] * 5 and series.replicas_current == [None] * 5
    assert found.total.requests == [0] * 5


def test_sums_of_callers_and_statuses_add_up_per_entity_and_in_total() -> None:
    window = Window.ending_at(NOW, 3)
    usage = [
        (key(2, "a", who="ann"), sums(200, 60, 70, tokens=(3, 7))),
        (key(2, "a", who=UNATTRIBUTED), sums(200, 80)),
        (key(2, "a", status=503), sums(503, 1)),
        (key(2, "b", status=429), sums(429, 2, 2)),
        (key(0, "a"), sums(200, 60, 60, 60)),
        (key(0, "", status=401), sums(401, 1)),  # refused before an entity was chosen
        (key(3, "a"), sums(200, 5)),  # before the window
    ]
    found = history(window, usage, [], ["a", "b"])
    a, b, total = found.series["a"], found.series["b"], found.total
    assert list(found.series) == ["a", "b"]
    assert a.requests == [4, 0, 3] and a.errors == [1, 0, 0]
    assert a.requests_per_s == [round(4 / 60, 3), 0.0, 0.1]  # the last minute: 30 s so far
    assert a.errors_per_s == a.server_errors_per_s == [round(1 / 60, 3), 0.0, 0.0]
    assert a.input_tokens_per_s == [0.1, 0.0, 0.0]
    assert a.output_tokens_per_s == [round(14 / 60, 3), 0.0, 0.0]
    assert b.errors == [2, 0, 0] and b.server_errors_per_s == [0.0, 0.0, 0.0]
    assert total.requests == [6, 0, 4] and total.errors == [3, 0, 1]
    # a's first minute: one request in 0.5-1 ms, three in 50-100 ms (b's: two in 1-2.5 ms).
    assert a.p50_ms[0] == pytest.approx(50 + 50 * (2 - 1) / 3, abs=1e-3)
    assert a.p99_ms[0] == pytest.approx(50 + 50 * (3.96 - 1) / 3, abs=1e-3)
    assert a.p50_ms[1] is None and a.p99_ms[2] == pytest.approx(99.5)
    assert total.p50_ms[0] == pytest.approx(1 + 1.5 * (3 - 1) / 2)
    assert total.p99_ms[0] == pytest.approx(50 + 50 * (5.94 - 3) / 3, abs=1e-3)


def test_entities_no_longer_configured_follow_the_configured_ones_by_name() -> None:
    window = Window.ending_at(NOW, 2)
    usage = [(key(1, "zeta"), sums(200, 1)), (key(1, "old"), sums(200, 1))]
    replicas = [ReplicaSample(THIS_MINUTE, "ep-id", "gone", 1, 1)]
    found = history(window, usage, replicas, ["new"])
    assert list(found.series) == ["new", "gone", "old", "zeta"]


def test_replicas_per_minute_and_their_sum_where_any_was_recorded() -> None:
    window = Window.ending_at(NOW, 3)
    minute = THIS_MINUTE - MINUTE_MS
    replicas = [
        ReplicaSample(minute, "ep-id", "a", 1, 2),
        ReplicaSample(THIS_MINUTE, "ep-id", "a", 2, 2),
        ReplicaSample(THIS_MINUTE, "ep-id", "b", 0, 1),
        ReplicaSample(THIS_MINUTE - 9 * MINUTE_MS, "ep-id", "a", 5, 5),  # before the window
    ]
    found = history(window, [], replicas, ["a", "b", "external"])
    assert found.series["a"].replicas_current == [None, 1, 2]
    assert found.series["a"].replicas_desired == [None, 2, 2]
    assert found.series["b"].replicas_current == [None, None, 0]
    assert found.series["external"].replicas_desired == [None, None, None]
    assert found.total.replicas_current == [None, 1, 2]
    assert found.total.replicas_desired == [None, 2, 3]


def test_a_minute_just_begun_rates_over_one_second_at_least() -> None:
    window = Window.ending_at(THIS_MINUTE + 5, 1)
    found = history(window, [(key(0, "a"), sums(200, 1, 1))], [], ["a"])
    assert found.last_minute_s == 1.0 and found.series["a"].requests_per_s == [2.0]


def test_rows_written_before_latency_buckets_count_but_give_no_percentile() -> None:
    window = Window.ending_at(NOW, 1)
    old = UsageSum(requests=3, latency_ms=30.0)
    found = history(window, [(key(0, "a"), old)], [], ["a"])
    assert found.series["a"].requests == [3] and found.series["a"].p50_ms == [None]
