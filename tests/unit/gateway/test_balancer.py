"""Traffic split and replica choice are pure functions of routes, load and a seeded RNG."""

from __future__ import annotations

import random

from berth.core.dataplane import EntityRoute, ReplicaRoute
from berth.gateway.balancer import pick_entity, pick_replica


def replicas(*ids: str, cap: int = 4) -> tuple[ReplicaRoute, ...]:
    return tuple(ReplicaRoute(i, f"127.0.0.1:{n}", cap) for n, i in enumerate(ids, 9000))


def test_split_follows_traffic_percentages() -> None:
    rng = random.Random(7)
    a = EntityRoute("a", 70, replicas("a0"))
    b = EntityRoute("b", 30, replicas("b0"))
    picks = [pick_entity([a, b], rng) for _ in range(10_000)]
    share = sum(p is a for p in picks) / len(picks)
    assert 0.68 < share < 0.72


def test_entity_without_ready_replicas_gives_its_share_away() -> None:
    a = EntityRoute("a", 70, ())
    b = EntityRoute("b", 30, replicas("b0"))
    assert {pick_entity([a, b], random.Random(i)) for i in range(50)} == {b}
    assert pick_entity([a], random.Random(1)) is None


def test_power_of_two_choices_prefers_the_less_loaded() -> None:
    reps = replicas("r0", "r1")
    load = {"r0": 3, "r1": 0}
    assert {pick_replica(reps, load, random.Random(i)).replica_id for i in range(50)} == {"r1"}  # type: ignore[union-attr]


def test_full_replicas_are_never_chosen() -> None:
    reps = replicas("r0", "r1", "r2", cap=2)
    assert pick_replica(reps, {"r0": 2, "r1": 2, "r2": 1}, random.Random(3)).replica_id == "r2"  # type: ignore[union-attr]
    assert pick_replica(reps, {"r0": 2, "r1": 2, "r2": 2}, random.Random(3)) is None
