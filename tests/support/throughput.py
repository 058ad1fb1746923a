"""A throughput chunk as a calibration stores it, for tests that need one measured."""

from __future__ import annotations

from berth.core.throughput import LLM_SLOTS, Calibration, CalibrationMethod

METHOD = CalibrationMethod(
    workload="the reference workload",
    engine="xllamacpp==1",
    slots=LLM_SLOTS,
    threads=2,
    prompt_tokens=80,
    max_tokens=64,
    rounds=2,
    requests=8,
    completion_tokens=512,
    seconds=11.9,
)


def calibration(
    chunk_tps: int = 95, fingerprint: str = "AMD EPYC, 2 logical CPUs; xllamacpp==1"
) -> Calibration:
    return Calibration(
        chunk_tps=chunk_tps,
        fingerprint=fingerprint,
        calibrated_at=1_700_000_000_000,
        duration_s=21.5,
        method=METHOD,
    )
