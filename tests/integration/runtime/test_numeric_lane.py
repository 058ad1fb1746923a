"""The numeric lane answers exactly as MLflow's own path, reads only what it fully
understands, and stays shut for models that need column names.

The models and the comparisons run in a model environment (``lane_probe.py`` under the
trainer's Python); the tests read its report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.runtime.probes import run_probe

pytestmark = pytest.mark.integration

PROBE = Path(__file__).with_name("lane_probe.py")
READ = ["split", "split_reordered", "records", "instances", "inputs_columns"]
READ += ["ints_in_float_columns", "with_request_id"]
LEFT_TO_MLFLOW = ["extra_column", "missing_column", "text_value", "bool_value", "nan_value"]
LEFT_TO_MLFLOW += ["params", "instances_rows", "split_with_index"]


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory, trainer_python: Path) -> dict[str, Any]:
    return run_probe(PROBE, trainer_python, tmp_path_factory.mktemp("lane"))


def test_the_lane_opens_for_numeric_estimators_and_not_for_column_names(
    probe: dict[str, Any],
) -> None:
    assert probe["lane"] == {
        "logistic": True,
        "forest": True,
        "proba": True,
        "integers": True,
        "by_name": False,
    }


@pytest.mark.parametrize("model", ["logistic", "forest", "proba"])
@pytest.mark.parametrize("body", READ)
def test_bodies_the_lane_reads_get_mlflows_answer(
    probe: dict[str, Any], model: str, body: str
) -> None:
    seen = probe["bodies"][model][body]
    assert seen["lane"] is not None, "the lane should read this body"
    assert seen["lane"] == seen["mlflow"]


@pytest.mark.parametrize("body", LEFT_TO_MLFLOW)
def test_bodies_with_anything_unusual_are_left_to_mlflow(probe: dict[str, Any], body: str) -> None:
    assert probe["bodies"]["logistic"][body]["lane"] is None


def test_integer_columns_take_integers_only(probe: dict[str, Any]) -> None:
    seen = probe["bodies"]["integers"]
    assert seen["ints_in_float_columns"]["lane"] == seen["ints_in_float_columns"]["mlflow"]
    assert seen["split"]["lane"] is None, "floats in integer columns: MLflow decides"


def test_lane_requests_batch_into_one_call_with_the_same_answers(probe: dict[str, Any]) -> None:
    assert probe["batched"] == {"same": True, "shared": 3}
