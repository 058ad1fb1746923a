"""Each served entity's replicas, ready and wanted, kept per minute for the metrics history.

A minute's sample is the count as of the last pass in that minute. Passes run twice a second,
so a sample is written on the first pass of each minute and again only when a count changed
within it: one write per entity a minute while nothing moves. Samples older than
``RETAIN_MS`` are dropped as each minute starts.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping

from berth.backends.base import ReplicaState, ReplicaStatus
from berth.controller.sizing import ReplicaCount
from berth.controller.targets import EndpointTarget
from berth.core.clock import Clock
from berth.core.usage import MINUTE_MS, minute_of
from berth.store import replica_history
from berth.store.fencing import Transactions
from berth.store.replica_history import ReplicaSample

RETAIN_MS = 7 * 24 * 60 * MINUTE_MS

EntityKey = tuple[str, str]
"""(endpoint id, served entity)."""


def entity_counts(
    targets: Iterable[EndpointTarget], observed: Iterable[ReplicaStatus]
) -> dict[EntityKey, ReplicaCount]:
    """Per entity that runs replicas: those ready now, whatever config version they serve
    (a rollout shows its surge), and those the newest config wants (the pending one's, while
    an update is in progress)."""
    ready = Counter(
        (r.spec.endpoint, r.spec.served_entity) for r in observed if r.state is ReplicaState.READY
    )
    counts: dict[EntityKey, ReplicaCount] = {}
    for target in targets:
        for config in (target.current, target.pending):
            for entity in config.entities if config is not None else ():
                if entity.spec is not None:
                    count = ReplicaCount(ready[(target.name, entity.name)], entity.replicas)
                    counts[(target.endpoint_id, entity.name)] = count
    return counts


class ReplicaHistory:
    def __init__(self, db: Transactions, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._written: dict[EntityKey, tuple[int, ReplicaCount]] = {}
        """What was last written per entity, and for which minute."""
        self._minute = 0
        """The minute old samples were last dropped in."""

    async def record(self, counts: Mapping[EntityKey, ReplicaCount]) -> None:
        """Write the samples ``counts`` change; entities no longer counted are forgotten."""
        minute = minute_of(self._clock.now_ms())
        due = [
            ReplicaSample(minute, endpoint, entity, count.ready, count.desired)
            for (endpoint, entity), count in counts.items()
            if self._written.get((endpoint, entity)) != (minute, count)
        ]
        forget = minute != self._minute
        if due or forget:
            await asyncio.to_thread(self._write, due, minute - RETAIN_MS if forget else None)
        self._minute = minute
        # Every entity counted now holds in the store what it counts (written or unchanged).
        self._written = {key: (minute, count) for key, count in counts.items()}

    def _write(self, due: list[ReplicaSample], forget_before: int | None) -> None:
        with self._db.transaction() as session:
            replica_history.record(session, due)
            if forget_before is not None:
                replica_history.forget_before(session, forget_before)
