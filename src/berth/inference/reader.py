"""Reading captured payloads back: the newest (or oldest) rows of an endpoint in a time window.

Reads through pyarrow.dataset with the hive partitioning, so days outside the window are never
opened and files still being written (dot-prefixed temporary names) are never seen.
"""

from __future__ import annotations

import functools
import operator
from pathlib import Path
from typing import Any, TypeAlias

from berth.core.errors import BerthError
from berth.inference.layout import day_of, endpoint_directory, partitioning
from berth.inference.schema import arrow_schema, partition_field

# pyarrow ships no type information: these name what the values are.
_Dataset: TypeAlias = Any  # pyarrow.dataset.Dataset
_Expression: TypeAlias = Any  # pyarrow.dataset.Expression


def _dataset_schema() -> Any:
    return arrow_schema().append(partition_field())


def read_payloads(
    root: Path,
    endpoint: str,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 100,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    """Up to ``limit`` rows with ``since_ms <= timestamp_ms < until_ms``, ordered by time.

    Rows are dicts of the file columns (JSON-ready; the ``date`` partition is left out, it
    repeats ``timestamp_ms``). Ties in time are ordered by ``request_id``. No data, no rows.
    """
    directory = endpoint_directory(root, endpoint)
    if limit < 1 or not directory.is_dir():
        return []
    import pyarrow as pa  # type: ignore[import-untyped]

    try:
        return _read(directory, _window(since_ms, until_ms), limit, newest_first)
    except pa.ArrowException as exc:
        raise BerthError(f"could not read the payloads captured for {endpoint!r}: {exc}") from exc


def schema_description() -> list[dict[str, str | bool]]:
    """Each column's name, Arrow type, nullability and meaning, for docs and REST answers."""
    return [
        {
            "name": field.name,
            "type": str(field.type),
            "nullable": field.nullable,
            "meaning": field.metadata[b"description"].decode(),
        }
        for field in _dataset_schema()
    ]


def _read(
    directory: Path, window: _Expression, limit: int, newest_first: bool
) -> list[dict[str, Any]]:
    import pyarrow.dataset as ds  # type: ignore[import-untyped]

    dataset = ds.dataset(
        directory, schema=_dataset_schema(), format="parquet", partitioning=partitioning()
    )
    boundary = _boundary(dataset, window, limit, newest_first)
    if boundary is not None:
        stamp = ds.field("timestamp_ms")
        window = window & (stamp >= boundary if newest_first else stamp <= boundary)
    table = dataset.to_table(columns=arrow_schema().names, filter=window)
    order = "descending" if newest_first else "ascending"
    ordered = table.sort_by([("timestamp_ms", order), ("request_id", "ascending")])
    rows: list[dict[str, Any]] = ordered.slice(0, limit).to_pylist()
    return rows


def _window(since_ms: int | None, until_ms: int | None) -> _Expression:
    """The time filter, with the matching days spelled out so whole partitions are skipped."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    stamp, day = ds.field("timestamp_ms"), ds.field("date")
    conditions = [ds.scalar(True)]
    if since_ms is not None:
        conditions += [stamp >= since_ms, day >= pa.scalar(day_of(since_ms), pa.date32())]
    if until_ms is not None:
        conditions += [stamp < until_ms, day <= pa.scalar(day_of(until_ms - 1), pa.date32())]
    return functools.reduce(operator.and_, conditions)


def _boundary(dataset: _Dataset, window: _Expression, limit: int, newest_first: bool) -> int | None:
    """The time of the ``limit``-th row in order, from the time column alone, or None if fewer.

    Filtering on it before reading whole rows means bodies are read only for rows that can be
    returned, not for every row in the window.
    """
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    stamps = dataset.to_table(columns=["timestamp_ms"], filter=window)
    if stamps.num_rows <= limit:
        return None
    order = "descending" if newest_first else "ascending"
    chosen = stamps.take(pc.select_k_unstable(stamps, k=limit, sort_keys=[("timestamp_ms", order)]))
    column = chosen.column("timestamp_ms")
    boundary: int = (pc.min(column) if newest_first else pc.max(column)).as_py()
    return boundary
