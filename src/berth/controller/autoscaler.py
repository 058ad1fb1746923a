"""How many replicas each served entity runs, from the demand gateways report.

Demand is concurrency: the mean number of requests holding a replica slot over the last
sample (``busy_s`` grows by each finished request's time, so short requests between samples
count), or those in flight if more, plus those waiting. It is smoothed exponentially, and the
replica count that would keep each replica at ``target_utilization`` of its slots is wanted.
The count rises once that want has held for ``upscale_delay_s`` and falls once it has held for
``downscale_delay_s`` (to the highest want of that window), always within the entity's bounds.
An entity with scale to zero keeps one replica while requests came in the last idle period,
drops to none after it, and goes back to one at once when a request waits for it.

An open LLM served with provisioned throughput has a second demand, in replicas' worth of its
band: the tokens its requests used over the last sample, each replica counting for the chunk
of tokens/s it was calibrated at (``band_s``), plus the estimates waiting for the band
(``band_queued_s``: a queue wants draining within a second). Smoothed alike, it wants the
replicas that keep each at ``target_utilization`` of its chunk; the entity gets the larger of
the two wants, so a saturated or queued band scales up (to the maximum throughput's replicas)
as surely as busy engine slots do. Entities without a band report none and scale as before.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from berth.controller.targets import Scaling
from berth.core.load import EntityLoad

ScaleKey = tuple[str, str, str]
"""(endpoint, served entity, replica spec fingerprint): a changed spec scales anew."""

MIN_SAMPLE_S = 0.2
"""Samples closer than this (a pass right after another) change nothing."""


@dataclass(frozen=True, slots=True)
class Policy:
    target_utilization: float = 0.7
    upscale_delay_s: float = 2.0
    downscale_delay_s: float = 60.0
    smoothing_s: float = 2.0
    scale_to_zero_idle_s: float = 1800.0


@dataclass(slots=True)
class _State:
    replicas: int
    sampled_at: float
    busy_s: float
    served: int
    active_at: float
    band_s: float = 0.0
    demand: float = 0.0
    band_demand: float = 0.0
    """Smoothed replicas' worth of provisioned throughput in use or waiting."""
    wants: deque[tuple[float, int]] = field(default_factory=deque)
    """(time, replicas wanted) of recent samples, before the entity's bounds apply."""


@dataclass(frozen=True, slots=True)
class Size:
    replicas: int
    demand: float


class Autoscaler:
    def __init__(self, policy: Policy, now: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._now = now
        self._states: dict[ScaleKey, _State] = {}

    def size(self, key: ScaleKey, scaling: Scaling, slots: int, load: EntityLoad | None) -> Size:
        """The replica count for ``key`` now; ``slots`` is what one replica takes at once."""
        now = self._now()
        load = load or EntityLoad()
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State(
                self._initial(key, scaling), now, load.busy_s, load.served, now, load.band_s
            )
            return Size(state.replicas, state.demand)
        if load.served != state.served or load.in_flight or load.waiting or load.band_queued_s:
            state.active_at = now
        if now - state.sampled_at >= MIN_SAMPLE_S:
            self._sample(state, load, now, slots)
        state.replicas = self._decide(state, scaling, load, now)
        return Size(state.replicas, state.demand)

    def retain(self, keys: Iterable[ScaleKey]) -> None:
        """Forget entities that are no longer configured."""
        kept = set(keys)
        self._states = {k: s for k, s in self._states.items() if k in kept}

    def _initial(self, key: ScaleKey, scaling: Scaling) -> int:
        """A new spec of an entity already running starts as many replicas as it has."""
        same = [s.replicas for k, s in self._states.items() if k[:2] == key[:2]]
        start = max(same, default=scaling.initial)
        return min(max(start, scaling.initial), scaling.max_replicas)

    def _sample(self, state: _State, load: EntityLoad, now: float, slots: int) -> None:
        elapsed = now - state.sampled_at
        busy = max(load.busy_s - state.busy_s, 0.0)  # a gateway that restarted counts anew
        concurrency = max(busy / elapsed, float(load.in_flight)) + load.waiting
        band = max(load.band_s - state.band_s, 0.0) / elapsed + load.band_queued_s
        weight = 1.0 - math.exp(-elapsed / self.policy.smoothing_s)
        state.demand += (concurrency - state.demand) * weight
        state.band_demand += (band - state.band_demand) * weight
        state.sampled_at, state.busy_s, state.served = now, load.busy_s, load.served
        state.band_s = load.band_s
        utilization = self.policy.target_utilization
        per_replica = max(slots * utilization, 1e-9)
        want = max(
            math.ceil(state.demand / per_replica - 1e-9),
            math.ceil(state.band_demand / utilization - 1e-9),
        )
        state.wants.append((now, want))
        horizon = now - max(self.policy.upscale_delay_s, self.policy.downscale_delay_s) - 1.0
        while state.wants and state.wants[0][0] < horizon:
            state.wants.popleft()

    def _decide(self, state: _State, scaling: Scaling, load: EntityLoad, now: float) -> int:
        idle_s = scaling.idle_s or self.policy.scale_to_zero_idle_s
        floor = scaling.min_replicas
        if floor == 0 and now - state.active_at < idle_s:
            floor = 1
        if floor == 0:
            return 0  # idle for the whole idle period: the delay before scaling to zero
        if state.replicas == 0:
            return 1  # a request came: start at once, scale further as usual
        current = state.replicas
        latest = _bounded(state.wants[-1][1] if state.wants else current, floor, scaling)
        if latest > current:
            held = _held(state.wants, now, self.policy.upscale_delay_s, min)
            if held is not None and _bounded(held, floor, scaling) > current:
                return _bounded(held, floor, scaling)
        elif latest < current:
            held = _held(state.wants, now, self.policy.downscale_delay_s, max)
            if held is not None and _bounded(held, floor, scaling) < current:
                return _bounded(held, floor, scaling)
        return _bounded(current, floor, scaling)


def _bounded(replicas: int, floor: int, scaling: Scaling) -> int:
    return min(max(replicas, floor), scaling.max_replicas)


def _held(
    wants: deque[tuple[float, int]],
    now: float,
    delay_s: float,
    pick: Callable[[Iterable[int]], int],
) -> int | None:
    """The want that held over the last ``delay_s`` (its lowest going up, highest going
    down), or None while the samples do not cover that long yet."""
    if not wants or wants[0][0] > now - delay_s:
        return None
    return pick([w for t, w in wants if t >= now - delay_s] or [wants[-1][1]])
