"""How many replicas a served entity's config asks for: one per four concurrent requests of
its ``workload_size`` or ``min/max_provisioned_concurrency`` (Databricks' sizing)."""

from __future__ import annotations

import math

from berth.core.endpoint_config import ServedEntity

REPLICA_CONCURRENCY = 4
"""Concurrent requests one replica takes: Databricks' Small size is one such replica."""

WORKLOAD_CONCURRENCY = {"Small": (4, 4), "Medium": (8, 16), "Large": (16, 64)}
"""The provisioned concurrency range of each workload size, as on Databricks."""


def replica_bounds(entity: ServedEntity) -> tuple[int, int]:
    """(fewest, most) replicas; the fewest is 0 with scale to zero."""
    low, high = WORKLOAD_CONCURRENCY.get(entity.workload_size or "Small", (4, 4))
    if entity.max_provisioned_concurrency is not None:
        low = entity.min_provisioned_concurrency or 0
        high = entity.max_provisioned_concurrency
    fewest = 0 if entity.scale_to_zero_enabled else max(1, math.ceil(low / REPLICA_CONCURRENCY))
    return fewest, max(1, math.ceil(high / REPLICA_CONCURRENCY))
