"""How many replicas a served entity's config asks for: one per four concurrent requests of
its ``workload_size`` or ``min/max_provisioned_concurrency`` (Databricks' sizing), or, for an
open LLM with provisioned throughput, one per throughput chunk of its band."""

from __future__ import annotations

import math

from berth.core.endpoint_config import ServedEntity
from berth.core.throughput import band_replicas, provisioned_band

REPLICA_CONCURRENCY = 4
"""Concurrent requests one replica takes: Databricks' Small size is one such replica."""

WORKLOAD_CONCURRENCY = {"Small": (4, 4), "Medium": (8, 16), "Large": (16, 64)}
"""The provisioned concurrency range of each workload size, as on Databricks."""


def replica_bounds(entity: ServedEntity, chunk_tps: int | None = None) -> tuple[int, int]:
    """(fewest, most) replicas; the fewest is 0 with scale to zero (or a provisioned minimum
    of 0). ``chunk_tps`` is the throughput chunk of the entity's version on this host, for an
    entity sized in throughput; without it such an entity counts as its workload size (Small
    unless given), as it did before it was sized in throughput."""
    band = provisioned_band(entity, chunk_tps) if chunk_tps else None
    if band is not None:
        return band_replicas(band)
    low, high = WORKLOAD_CONCURRENCY.get(entity.workload_size or "Small", (4, 4))
    if entity.max_provisioned_concurrency is not None:
        low = entity.min_provisioned_concurrency or 0
        high = entity.max_provisioned_concurrency
    fewest = 0 if entity.scale_to_zero_enabled else max(1, math.ceil(low / REPLICA_CONCURRENCY))
    return fewest, max(1, math.ceil(high / REPLICA_CONCURRENCY))
