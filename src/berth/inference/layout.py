"""Where captured payloads live: ``<root>/<endpoint>/date=YYYY-MM-DD/part-<ms>-<uuid>.parquet``.

Hive-style partitions, so DuckDB, pandas and pyarrow.dataset read the tree as one table with a
``date`` column. A file is written under a dot-prefixed temporary name first and renamed: readers
skip it, as pyarrow.dataset skips dot files and a ``*.parquet`` glob skips ``.tmp``.
"""

from __future__ import annotations

import datetime
import functools
import re
import uuid
from pathlib import Path
from typing import Any

from berth.core.errors import InvalidParameter
from berth.inference.schema import partition_field

DAY_MS = 86_400_000
_EPOCH = datetime.date(1970, 1, 1)
_ENDPOINT_NAME = re.compile(r"[A-Za-z0-9_-]+")


@functools.cache
def partitioning() -> Any:
    """The hive partitioning on ``date`` that readers apply."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.dataset as ds  # type: ignore[import-untyped]

    return ds.partitioning(pa.schema([partition_field()]), flavor="hive")


def endpoint_directory(root: Path, endpoint: str) -> Path:
    """The endpoint's folder; any name that could leave ``root`` (``..``, ``/``) is refused."""
    if _ENDPOINT_NAME.fullmatch(endpoint) is None:
        raise InvalidParameter(
            f"{endpoint!r} is not an endpoint name: use letters, digits, '-' and '_'"
        )
    return root / endpoint


def day_of(timestamp_ms: int) -> datetime.date:
    """The UTC day of an epoch-milliseconds instant."""
    return _EPOCH + datetime.timedelta(days=timestamp_ms // DAY_MS)


def partition_directory(root: Path, endpoint: str, day: datetime.date) -> Path:
    return endpoint_directory(root, endpoint) / f"date={day.isoformat()}"


def part_names(now_ms: int) -> tuple[str, str]:
    """A file's final and temporary names; the uuid keeps processes and restarts from colliding."""
    final = f"part-{now_ms}-{uuid.uuid4().hex}.parquet"
    return final, f".{final}.tmp"
