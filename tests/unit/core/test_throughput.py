"""The arithmetic of provisioned throughput: chunks, bands, model units and replica counts."""

from __future__ import annotations

from typing import Any

import pytest

from berth.core.dataplane import ProvisionedBand
from berth.core.endpoint_config import ServedEntity
from berth.core.sizing import replica_bounds
from berth.core.throughput import (
    CalibrationMethod,
    band_replicas,
    provisioned_band,
    round_chunk,
)


def entity(**fields: Any) -> ServedEntity:
    return ServedEntity(name="smol-1", entity_name="smol", entity_version="1", **fields)


@pytest.mark.parametrize(
    ("measured", "chunk"),
    [(203.9, 200), (199.99, 195), (95.0, 95), (9.75, 5), (5.0, 5), (4.9, 4), (1.2, 1), (0.4, 0)],
)
def test_a_measured_rate_is_floored_to_a_round_chunk(measured: float, chunk: int) -> None:
    assert round_chunk(measured) == chunk


def test_a_band_in_tokens_per_second_is_what_was_asked() -> None:
    asked = entity(min_provisioned_throughput=190, max_provisioned_throughput=475)
    assert provisioned_band(asked, 95) == ProvisionedBand(95, 190, 475)
    assert provisioned_band(entity(workload_size="Small"), 95) is None


def test_model_units_burst_to_twice_their_chunks_unless_burst_scaling_is_off() -> None:
    assert provisioned_band(entity(provisioned_model_units=3), 95) == ProvisionedBand(95, 285, 570)
    fixed = entity(provisioned_model_units=3, burst_scaling_enabled=False)
    assert provisioned_band(fixed, 95) == ProvisionedBand(95, 285, 285)


def test_one_replica_per_chunk_rounded_up_and_none_at_a_minimum_of_zero() -> None:
    assert band_replicas(ProvisionedBand(95, 190, 475)) == (2, 5)
    assert band_replicas(ProvisionedBand(95, 0, 95)) == (0, 1)
    # A chunk measured again (smaller) after the band was set: the band is still covered.
    assert band_replicas(ProvisionedBand(90, 190, 475)) == (3, 6)


def test_replica_bounds_follow_the_chunk_of_an_entity_sized_in_throughput() -> None:
    asked = entity(min_provisioned_throughput=0, max_provisioned_throughput=300)
    assert replica_bounds(asked, 100) == (0, 3)
    assert replica_bounds(entity(provisioned_model_units=2), 100) == (2, 4)
    # Not measured here yet: counted as the Small workload it would otherwise be.
    assert replica_bounds(asked) == (1, 1)
    assert replica_bounds(entity(workload_size="Medium"), 100) == (2, 4)


def test_a_calibration_method_reads_back_what_it_wrote() -> None:
    method = CalibrationMethod(
        workload="4 concurrent chat completions",
        engine="xllamacpp==1",
        slots=4,
        threads=2,
        prompt_tokens=80,
        max_tokens=64,
        rounds=3,
        requests=12,
        completion_tokens=768,
        seconds=6.4,
    )
    written = method.to_json()
    assert written["tokens_per_s"] == 270.0  # prompts and answers: (80 x 12 + 768) / 6.4
    assert CalibrationMethod.from_json(written) == method
