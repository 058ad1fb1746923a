"""Prometheus metrics of one berth process (``prometheus-client``), kept low-cardinality:
labels are endpoint and served-entity names, status codes, stages and states, never callers."""

from berth.metrics.families import PASS_STAGES, STAGES, Metrics
from berth.metrics.replicas import ReplicaFigures

__all__ = ["PASS_STAGES", "STAGES", "Metrics", "ReplicaFigures"]
