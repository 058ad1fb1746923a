"""The latency histogram buckets every berth figure uses, so the gateway's histograms and the
replicas' own (summed by the server) line up. Standard library only: the runtime imports it."""

from __future__ import annotations

LATENCY_BOUNDS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
"""Upper bounds in seconds, from half a millisecond to thirty seconds."""
