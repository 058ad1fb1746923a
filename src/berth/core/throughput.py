"""Provisioned throughput of open LLMs: the calibrated chunk, model units, and the band of
tokens per second a served entity asks for.

A model version's *throughput chunk* N is what one replica of it sustains on this host at
the reference workload, measured (``controller/calibration.py``), never copied from a table.
One *model unit* is one chunk: N tokens/s, one replica. A served entity asks for a band
either in tokens per second (``min/max_provisioned_throughput``, multiples of N) or in model
units (``provisioned_model_units``: the minimum is units × N, and so is the maximum, or twice
that with ``burst_scaling_enabled``, Databricks' default). A minimum of 0 allows scale to zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Protocol

from berth.core.dataplane import ProvisionedBand
from berth.core.endpoint_config import ServedEntity

LLM_SLOTS = 4
"""Requests an open LLM's replica decodes at once (llama.cpp's slots): its concurrency, and
the concurrent streams of the reference workload, so the chunk is what a replica does."""
CHUNK_STEP = 5
"""Chunks are floored to a multiple of this many tokens/s (to whole tokens/s below it): a
round figure that a run a few percent faster or slower than the last does not change."""
BURST_FACTOR = 2
"""With burst scaling, a model-units entity may grow to this many times its units."""


@dataclass(frozen=True, slots=True)
class CalibrationMethod:
    """How a chunk was measured, stored beside it so a person can judge (or redo) it."""

    workload: str
    """The reference workload, in words."""
    engine: str
    """The engine's requirement, e.g. ``xllamacpp==2026.10.11549``."""
    slots: int
    threads: int
    prompt_tokens: int
    """Prompt tokens of each request (its chat template included)."""
    max_tokens: int
    rounds: int
    requests: int
    completion_tokens: int
    seconds: float
    """Wall time of the measured rounds (warm-up excluded)."""

    @property
    def tokens_per_s(self) -> float:
        """Prompt and completion tokens per second sustained, before flooring: what the
        gateway's admission reserves and settles against a band."""
        total = self.prompt_tokens * self.requests + self.completion_tokens
        return total / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "tokens_per_s": round(self.tokens_per_s, 2)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CalibrationMethod:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Calibration:
    """One model version's throughput chunk on one kind of host."""

    chunk_tps: int
    fingerprint: str
    """The host and engine it holds for: CPU model, logical CPUs, engine version."""
    calibrated_at: int
    """Epoch milliseconds."""
    duration_s: float
    """The whole calibration: environment, load, warm-up and measurement."""
    method: CalibrationMethod

    def to_json(self) -> dict[str, Any]:
        return {
            "throughput_chunk_size": self.chunk_tps,
            "fingerprint": self.fingerprint,
            "calibrated_at": self.calibrated_at,
            "duration_s": round(self.duration_s, 2),
            "method": self.method.to_json(),
        }


def round_chunk(tokens_per_s: float) -> int:
    """The chunk a measured rate makes: floored to a multiple of ``CHUNK_STEP``, or to whole
    tokens/s below it (0: the engine did not sustain one token per second)."""
    if tokens_per_s < CHUNK_STEP:
        return max(0, math.floor(tokens_per_s))
    return math.floor(tokens_per_s / CHUNK_STEP) * CHUNK_STEP


class SizedInThroughput(Protocol):
    """A served entity as the wire or the stored document has it."""

    @property
    def min_provisioned_throughput(self) -> int | None: ...
    @property
    def max_provisioned_throughput(self) -> int | None: ...
    @property
    def provisioned_model_units(self) -> int | None: ...


def asks_throughput(entity: SizedInThroughput) -> bool:
    """Whether the entity is sized in tokens per second (or model units), not concurrency."""
    return (
        entity.min_provisioned_throughput is not None
        or entity.max_provisioned_throughput is not None
        or entity.provisioned_model_units is not None
    )


def provisioned_band(entity: ServedEntity, chunk_tps: int) -> ProvisionedBand | None:
    """The band the entity asks for, with chunks of ``chunk_tps``; None when it asks none."""
    units = entity.provisioned_model_units
    if units is not None:
        burst = BURST_FACTOR if entity.burst_scaling_enabled is not False else 1
        return ProvisionedBand(chunk_tps, units * chunk_tps, burst * units * chunk_tps)
    if entity.max_provisioned_throughput is None:
        return None
    low = entity.min_provisioned_throughput or 0
    return ProvisionedBand(chunk_tps, low, entity.max_provisioned_throughput)


def band_replicas(band: ProvisionedBand) -> tuple[int, int]:
    """(fewest, most) replicas of a band: one per chunk, rounded up (a chunk re-measured
    since the band was set may not divide it), at least one at most; 0 fewest with a
    minimum of 0."""
    fewest = math.ceil(band.min_tps / band.chunk_tps)
    return fewest, max(1, math.ceil(band.max_tps / band.chunk_tps))


class CalibrationState(StrEnum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class CalibrationProgress:
    """Where a calibration of one model version stands, for a progress display."""

    state: CalibrationState
    phase: str
    """``environment``, ``loading``, ``warming up``, ``measuring``, ``done`` or ``failed``."""
    message: str
    elapsed_s: float
    fraction: float = 0.0
    """Of the measurement window, once measuring."""
    result: Calibration | None = None
    """Set when ``DONE``."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state.value,
            "phase": self.phase,
            "message": self.message,
            "elapsed_s": round(self.elapsed_s, 2),
            "fraction": round(self.fraction, 3),
        }
        if self.result is not None:
            out["calibration"] = self.result.to_json()
        return out
