"""Load reports cross processes as JSON rows, band figures included."""

from __future__ import annotations

import pytest

from berth.core.load import EntityLoad, report_from_json, report_to_json


def test_a_report_reads_back_as_it_was_written() -> None:
    report = {
        ("ep", "smol-1"): EntityLoad(2, 1, 3.5, 40, 1.25, 0.5),
        ("ep", "sum-1"): EntityLoad(0, 0, 0.25, 3),
    }
    assert report_from_json(report_to_json(report)) == report


def test_a_row_without_band_figures_reads_with_none() -> None:
    assert report_from_json([["ep", "sum-1", 1, 0, 2.0, 9]]) == {
        ("ep", "sum-1"): EntityLoad(1, 0, 2.0, 9)
    }


@pytest.mark.parametrize("row", [["ep", "m", 1, 0], ["ep", "m", "x", 0, 1.0, 2], "ep"])
def test_a_malformed_row_is_named(row: object) -> None:
    with pytest.raises(ValueError, match="malformed load row"):
        report_from_json([row])
