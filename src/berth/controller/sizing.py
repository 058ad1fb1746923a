"""How many replicas each served entity runs this pass, and how many were wanted and ready.

The autoscaler decides; should it fail in a pass, the counts the last pass wanted hold, so
that no replica stops for the failure. The counts wanted and ready are kept for GET and
exported as ``berth_replicas_desired``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import NamedTuple

from berth.backends.base import ReplicaSpec, ReplicaState, ReplicaStatus
from berth.controller.autoscaler import Autoscaler, ScaleKey, Size
from berth.controller.load_board import LoadBoard
from berth.controller.targets import ConfigTarget, EndpointTarget, EntityTarget
from berth.metrics import Metrics


class ReplicaCount(NamedTuple):
    ready: int
    desired: int


Count = Callable[[str, int, EntityTarget, ReplicaSpec], int]
"""(endpoint, config version, entity, its spec) → the entity's replica count."""


class Sizing:
    def __init__(self, autoscaler: Autoscaler, load: LoadBoard, metrics: Metrics) -> None:
        self._autoscaler = autoscaler
        self._load = load
        self._metrics = metrics
        self._scale: dict[tuple[str, int, str], ReplicaCount] = {}

    def scale(self, endpoint: str) -> dict[tuple[int, str], ReplicaCount]:
        """(config version, served entity) → replicas ready and wanted, as of the last pass."""
        return {(v, e): c for (name, v, e), c in self._scale.items() if name == endpoint}

    @property
    def scales(self) -> dict[tuple[str, int, str], ReplicaCount]:
        """Every entity's counts as of the last pass: what the leader stores for the others."""
        return self._scale

    def follow(self, scales: dict[tuple[str, int, str], ReplicaCount]) -> None:
        """The leader's counts, on a server that does not lead (which then answers GET as the
        leader does, and starts from them should it take over)."""
        self._scale = scales

    def autoscale(self, targets: Iterable[EndpointTarget]) -> list[EndpointTarget]:
        """Each entity's replica count from the autoscaler (one decision per spec a pass,
        shared by the current and pending configs when they run the same spec, each held
        within its own config's bounds: a pending config that asks more replicas of the
        same spec, as a config with more model units does, has them before it is promoted)."""
        load = self._load.read()
        sizes: dict[ScaleKey, Size] = {}

        def sized(endpoint: str, _version: int, entity: EntityTarget, spec: ReplicaSpec) -> int:
            key = (endpoint, entity.name, spec.fingerprint())
            if key not in sizes:
                sizes[key] = self._autoscaler.size(
                    key, entity.scaling, spec.max_concurrency, load.get(key[:2])
                )
            bounds = entity.scaling
            return min(max(sizes[key].replicas, bounds.min_replicas), bounds.max_replicas)

        resized = _resized(targets, sized)
        self._autoscaler.retain(sizes)
        self._metrics.demand.clear()
        for (endpoint, entity, _), size in sizes.items():
            self._metrics.demand.labels(endpoint, entity).set(size.demand)
        return resized

    def as_before(self, targets: Iterable[EndpointTarget]) -> list[EndpointTarget]:
        """The counts the last pass wanted; an entity new since then starts as configured."""

        def before(endpoint: str, version: int, entity: EntityTarget, _spec: ReplicaSpec) -> int:
            count = self._scale.get((endpoint, version, entity.name))
            return entity.replicas if count is None else count.desired

        return _resized(targets, before)

    def count(self, targets: Iterable[EndpointTarget], observed: Iterable[ReplicaStatus]) -> None:
        """Replicas ready and wanted per entity of each config, for GET and metrics."""
        ready = Counter(r.spec for r in observed if r.state is ReplicaState.READY)
        scale: dict[tuple[str, int, str], ReplicaCount] = {}
        gauge = self._metrics.desired_replicas
        gauge.clear()
        for target in targets:
            for config in (target.current, target.pending):
                if config is None:
                    continue
                for entity in config.entities:
                    if entity.spec is not None:
                        count = ReplicaCount(ready[entity.spec], entity.replicas)
                        scale[(target.name, config.version, entity.name)] = count
            if target.current is not None:
                for entity in target.current.entities:
                    if entity.spec is not None:
                        gauge.labels(target.name, entity.name).set(entity.replicas)
        self._scale = scale


def _resized(targets: Iterable[EndpointTarget], count: Count) -> list[EndpointTarget]:
    """``targets`` with the replica count of each entity that runs replicas from ``count``."""

    def config(endpoint: str, target: ConfigTarget | None) -> ConfigTarget | None:
        if target is None:
            return None
        entities = tuple(
            e if e.spec is None else replace(e, replicas=count(endpoint, target.version, e, e.spec))
            for e in target.entities
        )
        return replace(target, entities=entities)

    return [
        replace(t, current=config(t.name, t.current), pending=config(t.name, t.pending))
        for t in targets
    ]
