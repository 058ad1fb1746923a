"""Merging MLflow inputs by rows and splitting predictions back: every batched answer must be
the answer the request gets alone.

pandas, numpy and MLflow live in models' environments, not in berth's, so the merges and
splits run in one (``rows_probe.py`` under the trainer's Python) and the tests read its report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.runtime.probes import run_probe

pytestmark = pytest.mark.integration

PROBE = Path(__file__).with_name("rows_probe.py")


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory, trainer_python: Path) -> dict[str, Any]:
    return run_probe(PROBE, trainer_python, tmp_path_factory.mktemp("probe"))


@pytest.mark.parametrize("kind", ["array", "matrix", "list", "series", "frame", "dict"])
def test_predictions_split_back_into_what_each_request_gets_alone(
    probe: dict[str, Any], kind: str
) -> None:
    output = probe["outputs"][kind]
    assert len(output["batched"]) == 3
    assert output["batched"] == output["alone"]


@pytest.mark.parametrize("kind", ["scalar", "summary", "dict_with_scalar", "text"])
def test_predictions_without_a_row_per_input_row_are_not_split(
    probe: dict[str, Any], kind: str
) -> None:
    assert probe["outputs"][kind] == {"split": False}


def test_only_alike_inputs_merge(probe: dict[str, Any]) -> None:
    assert probe["merges"] == {
        "same_frames": True,
        "other_columns": False,
        "other_column_order": False,
        "other_dtypes": False,
        "own_index": False,
        "same_arrays": True,
        "other_row_shape": False,
        "other_array_dtype": False,
        "texts_of_other_widths": True,
        "same_tensors": True,
        "other_tensor_names": False,
        "ragged_tensors": False,
        "scalars": False,
        "lists": False,
        "empty_frames": False,
    }


def test_a_model_with_a_signature_answers_each_format_batched_as_alone(
    probe: dict[str, Any],
) -> None:
    """Frames (split, records, ints cast by the schema) share a call, as do named tensors
    (instances of records, inputs by name); other params, other columns and unreadable
    bodies do not, and the failing ones fail alone."""
    signed = probe["models"]["signed"]
    assert signed["batched"] == signed["alone"]
    assert signed["shared"] == [3, 3, 3, 2, 2, 1, 1, 1, 0, 0]
    errors = [i for i, answer in enumerate(signed["alone"]) if "error" in answer]
    assert errors == [6, 7, 8, 9]


def test_a_model_without_a_signature_merges_rows_given_as_arrays(probe: dict[str, Any]) -> None:
    unsigned = probe["models"]["unsigned"]
    assert unsigned["batched"] == unsigned["alone"]
    assert unsigned["shared"] == [3, 3, 3, 1]
    assert "error" in unsigned["alone"][3]
