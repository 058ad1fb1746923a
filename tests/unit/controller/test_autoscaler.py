"""The autoscaler sizes entities from reported demand, with delays, bounds and scale to zero."""

from __future__ import annotations

from dataclasses import dataclass

from berth.controller.autoscaler import Autoscaler, Policy
from berth.controller.targets import Scaling
from berth.core.load import EntityLoad

KEY = ("ep", "m-1", "abc")
POLICY = Policy(
    target_utilization=0.5,
    upscale_delay_s=2.0,
    downscale_delay_s=10.0,
    smoothing_s=0.5,
    scale_to_zero_idle_s=30.0,
)


@dataclass
class Feed:
    """A gateway's counters as a steady concurrency runs for a while."""

    busy_s: float = 0.0
    served: int = 0
    band_s: float = 0.0

    def run(self, concurrency: float, seconds: float, band: float = 0.0) -> None:
        """``band``: replicas' worth of provisioned throughput the finished requests used."""
        self.busy_s += concurrency * seconds
        self.served += int(concurrency * seconds * 100)
        self.band_s += band * seconds


class Scenario:
    def __init__(self, scaling: Scaling, policy: Policy = POLICY) -> None:
        self.t = 0.0
        self.scaling = scaling
        self.feed = Feed()
        self.scaler = Autoscaler(policy, now=lambda: self.t)
        self.replicas = self.step(0.0)

    def step(
        self,
        seconds: float,
        concurrency: float = 0.0,
        waiting: int = 0,
        band: float = 0.0,
        band_queued_s: float = 0.0,
    ) -> int:
        self.t += seconds
        self.feed.run(concurrency, seconds, band)
        load = EntityLoad(
            0, waiting, self.feed.busy_s, self.feed.served, self.feed.band_s, band_queued_s
        )
        self.replicas = self.scaler.size(KEY, self.scaling, 4, load).replicas
        return self.replicas

    def hold(
        self,
        seconds: float,
        concurrency: float,
        tick: float = 0.5,
        band: float = 0.0,
        band_queued_s: float = 0.0,
    ) -> list[int]:
        return [
            self.step(tick, concurrency, band=band, band_queued_s=band_queued_s)
            for _ in range(round(seconds / tick))
        ]


def test_sustained_demand_adds_replicas_after_the_upscale_delay_within_bounds() -> None:
    s = Scenario(Scaling(1, 3))
    assert s.replicas == 1
    # 6 concurrent requests at 2 per replica (4 slots x 0.5) want 3 replicas.
    counts = s.hold(4.0, concurrency=6.0)
    assert counts[0] == 1, "one busy sample must not scale"
    assert counts[-1] == 3
    first_three = counts.index(3) * 0.5 + 0.5
    assert first_three >= POLICY.upscale_delay_s
    assert max(s.hold(4.0, concurrency=40.0)) == 3, "never above max_replicas"


def test_falling_demand_removes_replicas_only_after_the_downscale_delay() -> None:
    s = Scenario(Scaling(1, 4))
    s.hold(6.0, concurrency=8.0)
    assert s.replicas == 4
    counts = s.hold(9.0, concurrency=1.5)
    assert set(counts) == {4}, "inside the downscale delay nothing stops"
    s.hold(4.0, concurrency=1.5)
    assert s.replicas == 1


def test_short_requests_between_samples_count_as_demand() -> None:
    s = Scenario(Scaling(1, 4))
    # Each sample sees nothing in flight, but 0.5 s of every 0.5 s were spent by 5 requests.
    for _ in range(10):
        s.t += 0.5
        s.feed.busy_s += 2.5
        s.feed.served += 50
        s.replicas = s.scaler.size(KEY, s.scaling, 4, EntityLoad(0, 0, s.feed.busy_s, 500)).replicas
    assert s.replicas == 3


def test_scale_to_zero_after_the_idle_period_and_back_at_once_for_a_waiting_request() -> None:
    s = Scenario(Scaling(0, 2))
    assert s.replicas == 1, "a new entity starts one replica to become ready"
    s.hold(29.0, concurrency=0.0)
    assert s.replicas == 1
    s.hold(2.0, concurrency=0.0)
    assert s.replicas == 0
    assert s.step(0.1, waiting=1) == 1, "a waiting request starts a replica with no delay"
    s.hold(25.0, concurrency=0.5)
    assert s.replicas == 1, "traffic keeps it"


def test_an_entity_idle_seconds_overrides_the_default() -> None:
    s = Scenario(Scaling(0, 1, idle_s=3.0))
    s.hold(4.0, concurrency=0.0)
    assert s.replicas == 0


def test_a_new_spec_of_a_running_entity_starts_with_as_many_replicas() -> None:
    s = Scenario(Scaling(1, 4))
    s.hold(6.0, concurrency=8.0)
    load = EntityLoad(0, 0, s.feed.busy_s, s.feed.served)
    new = s.scaler.size(("ep", "m-1", "def"), Scaling(1, 4), 4, load)
    assert new.replicas == 4
    s.scaler.retain([("ep", "m-1", "def")])
    other = s.scaler.size(("ep", "m-1", "ghi"), Scaling(1, 2), 4, load)
    assert other.replicas == 2, "bounded by its own max"


def test_a_queued_band_scales_up_to_the_maximum_and_back_to_the_minimum() -> None:
    """Few requests hold slots (one in flight of four), but the band is used whole and
    two replicas' worth of tokens wait for it: the band's want wins."""
    s = Scenario(Scaling(1, 3))
    counts = s.hold(4.0, concurrency=1.0, band=1.0, band_queued_s=2.0)
    assert counts[0] == 1 and counts[-1] == 3
    assert counts.index(3) * 0.5 + 0.5 >= POLICY.upscale_delay_s
    s.hold(12.0, concurrency=0.0)
    assert s.replicas == 1, "never below the minimum"


def test_a_band_used_within_the_target_keeps_its_replicas() -> None:
    s = Scenario(Scaling(1, 3))
    assert set(s.hold(6.0, concurrency=0.5, band=0.45)) == {1}, "0.45 of one chunk, 0.5 wanted"
    assert s.hold(6.0, concurrency=0.5, band=0.9)[-1] == 2, "past the target: a replica more"
