"""Inference tables written by several processes at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.dataset as ds  # type: ignore[import-untyped]
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).parents[3]


def standard_table(directory: Path) -> pa.Table:
    """Read as any hive-aware reader would, with nothing of berth's own reader involved."""
    return ds.dataset(directory, format="parquet", partitioning="hive").to_table()


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


_CHILD = """
import sys
from pathlib import Path
from berth.inference import CaptureWriter
from tests.support.inference import record

with CaptureWriter(Path(sys.argv[1])) as writer:
    for i in range(500):
        writer.offer(record(i, endpoint="shared", prefix=sys.argv[2]), 1.0)
        if i % 10 == 9:
            writer.flush()
"""


def test_two_processes_write_to_one_endpoint_without_clobbering(tmp_path: Path) -> None:
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), name], cwd=REPO)
        for name in ("first", "second")
    ]
    assert [child.wait(timeout=120) for child in children] == [0, 0]

    ids = standard_table(tmp_path / "shared").column("request_id").to_pylist()
    assert sorted(ids) == [f"{name}-{i:06d}" for name in ("first", "second") for i in range(500)]
    assert len(files_under(tmp_path)) == 100
