"""Pure choices: a served entity by traffic percentage, a replica by power of two choices,
the entities a failing request falls back to."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from berth.core.dataplane import EntityRoute, ReplicaRoute

MAX_FALLBACKS = 2
"""As on Databricks: a request tries at most two other served entities."""


def pick_entity(entities: Sequence[EntityRoute], rng: random.Random) -> EntityRoute | None:
    """Weighted by traffic percentage among entities that have a ready replica.

    An entity whose replicas are all down gives its share to the others rather than failing.
    """
    live = [e for e in entities if e.live and e.traffic_percentage > 0]
    if not live:
        return None
    roll = rng.random() * sum(e.traffic_percentage for e in live)
    for entity in live:
        roll -= entity.traffic_percentage
        if roll < 0:
            return entity
    return live[-1]


def pick_replica(
    replicas: Sequence[ReplicaRoute], outstanding: Mapping[str, int], rng: random.Random
) -> ReplicaRoute | None:
    """The less loaded of two random replicas, or None when every replica is at capacity."""
    free = [r for r in replicas if outstanding.get(r.replica_id, 0) < r.max_concurrency]
    if len(free) <= 1:
        return free[0] if free else None
    a, b = rng.sample(free, 2)
    return a if outstanding.get(a.replica_id, 0) <= outstanding.get(b.replica_id, 0) else b


def fallback_order(
    entities: Sequence[EntityRoute], first: EntityRoute, limit: int = MAX_FALLBACKS
) -> list[EntityRoute]:
    """``first``, then the endpoint's other external entities in their configured order
    (starting after ``first`` and wrapping around), whatever their traffic share."""
    at = next(i for i, e in enumerate(entities) if e.name == first.name)
    rest = [e for e in (*entities[at + 1 :], *entities[:at]) if e.external is not None]
    return [first, *rest[:limit]]
