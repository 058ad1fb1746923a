"""Provisioned throughput at the API: bands against the measured chunk, model-units bodies, and
the optimization-info answer."""

from __future__ import annotations

from typing import Any

import pytest

from berth.api.endpoint_config import normalise_config
from berth.api.provisioned import (
    check_multiples,
    check_open_llm,
    optimization_info,
    pt_endpoint,
)
from berth.api.schemas.endpoints import CreatePtEndpoint
from berth.core.endpoint_config import ServedEntity
from berth.core.errors import InvalidParameter
from tests.support.throughput import calibration

LABEL = "Served entity 'smol-1'"
CALIBRATION = calibration()


def entity(**fields: Any) -> ServedEntity:
    return ServedEntity(name="smol-1", entity_name="smol", entity_version="1", **fields)


def test_multiples_of_the_chunk_pass() -> None:
    check_multiples(
        LABEL, entity(min_provisioned_throughput=0, max_provisioned_throughput=190), CALIBRATION
    )
    check_multiples(LABEL, entity(provisioned_model_units=3), CALIBRATION)


def test_a_bound_off_the_chunk_is_refused_naming_the_chunk_and_the_multiples_near_it() -> None:
    asked = entity(min_provisioned_throughput=95, max_provisioned_throughput=200)
    with pytest.raises(InvalidParameter) as refused:
        check_multiples(LABEL, asked, CALIBRATION)
    assert refused.value.message == (
        "Served entity 'smol-1': max_provisioned_throughput must be a multiple of 95 tokens/s "
        "(the throughput chunk of smol version 1 on this host); it is 200: 190 or 285 would do."
    )
    below_one_chunk = entity(min_provisioned_throughput=50, max_provisioned_throughput=95)
    with pytest.raises(
        InvalidParameter, match="min_provisioned_throughput .* it is 50: 95 would do"
    ):
        check_multiples(LABEL, below_one_chunk, CALIBRATION)


def test_throughput_is_refused_for_models_that_are_not_open_llms() -> None:
    check_open_llm(LABEL, entity(max_provisioned_throughput=95), "gguf")
    with pytest.raises(InvalidParameter, match="applies to open LLMs .* is a score_py model"):
        check_open_llm(LABEL, entity(max_provisioned_throughput=95), "score_py")


def test_a_model_units_create_reads_as_an_ordinary_create() -> None:
    body = CreatePtEndpoint.model_validate(
        {
            "name": "chat",
            "config": {
                "served_entities": [
                    {"entity_name": "smol", "entity_version": 1, "provisioned_model_units": 2}
                ]
            },
            "tags": [{"key": "team", "value": "ml"}],
        }
    )
    create = pt_endpoint(body)
    assert (create.name, [t.key for t in create.tags or []]) == ("chat", ["team"])
    [served] = normalise_config(create.config).served_entities
    assert (served.name, served.provisioned_model_units, served.workload_size) == (
        "smol-1",
        2,
        None,
    )


def test_model_units_must_be_given_and_positive() -> None:
    for units in ({}, {"provisioned_model_units": 0}):
        with pytest.raises(ValueError, match="provisioned_model_units"):
            CreatePtEndpoint.model_validate(
                {"name": "chat", "config": {"served_entities": [{"entity_name": "smol", **units}]}}
            )


def test_optimization_info_answers_an_open_llm_with_its_chunk_and_others_not_optimizable() -> None:
    details = {"weights": "w.gguf", "architecture": "llama"}
    answer = optimization_info("gguf", details, CALIBRATION)
    assert {k: answer[k] for k in ("optimizable", "model_type", "throughput_chunk_size")} == {
        "optimizable": True,
        "model_type": "llama",
        "throughput_chunk_size": 95,
    }
    assert answer["calibration"]["calibrated_at"] == CALIBRATION.calibrated_at
    assert answer["calibration"]["method"]["tokens_per_s"] == pytest.approx(
        96.81, abs=0.01
    )  # (80 x 8 + 512) / 11.9
    assert optimization_info("mlflow", {}, None) == {"optimizable": False}
