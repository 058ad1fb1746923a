"""read_payloads and schema_description over files a real CaptureWriter wrote."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from berth.core.errors import BerthError, InvalidParameter
from berth.inference import CaptureWriter, PayloadRecord, read_payloads, schema_description
from berth.inference.schema import arrow_schema
from tests.support.inference import T0, record

HOUR_MS = 3_600_000


def capture(root: Path, records: list[PayloadRecord]) -> None:
    with CaptureWriter(root) as writer:
        for r in records:
            assert writer.offer(r, 1.0)


def ids(rows: list[dict[str, object]]) -> list[object]:
    return [row["request_id"] for row in rows]


@pytest.fixture
def hourly(tmp_path: Path) -> Path:
    """Ten records an hour apart, from 22:13 on 2023-11-14: two on the first day, eight after."""
    capture(tmp_path, [record(i, timestamp_ms=T0 + i * HOUR_MS) for i in range(10)])
    return tmp_path


def test_nothing_captured_reads_as_no_rows(tmp_path: Path) -> None:
    assert read_payloads(tmp_path / "missing", "ep") == []
    (tmp_path / "ep").mkdir()
    assert read_payloads(tmp_path, "ep") == []


def test_a_thousand_rows_read_back_whole(tmp_path: Path) -> None:
    records = [record(i) for i in range(1000)]
    capture(tmp_path, records)

    rows = read_payloads(tmp_path, "ep", limit=1000, newest_first=False)

    assert rows[0] == {
        "request_id": "req-000000",
        "client_request_id": None,
        "endpoint": "ep",
        "served_entity": "sum-1",
        "principal": "alice@example.com",
        "timestamp_ms": T0,
        "status_code": 500,
        "latency_ms": 0.0,
        "request": '{"inputs": [0, "\\u00e9"]}',
        "response": '{"predictions": [0]}',
        "request_truncated": False,
        "response_truncated": False,
        "input_tokens": 0,
        "output_tokens": 0,
        "error": "replica failed on 0",
        "ttft_ms": None,
        "itl_ms": None,
    }
    assert [row["request"] for row in rows] == [r.request.decode() for r in records]


def test_token_timings_read_back_and_files_written_before_them_read_as_null(
    tmp_path: Path,
) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    capture(tmp_path, [replace(record(1), ttft_ms=12.5, itl_ms=3.25)])
    older = pa.schema([f for f in arrow_schema() if f.name not in ("ttft_ms", "itl_ms")])
    row = replace(record(0), timestamp_ms=T0 - 1)
    written = {
        **{f.name: [getattr(row, f.name, None)] for f in older},
        "request": [row.request.decode()],
        "response": [row.response.decode()],
        "request_truncated": [False],
        "response_truncated": [False],
    }
    pq.write_table(
        pa.Table.from_pydict(written, schema=older),
        tmp_path / "ep" / "date=2023-11-14" / "part-1-older.parquet",
    )

    rows = read_payloads(tmp_path, "ep", newest_first=False)

    assert [(r["request_id"], r["ttft_ms"], r["itl_ms"]) for r in rows] == [
        ("req-000000", None, None),
        ("req-000001", 12.5, 3.25),
    ]


def test_rows_come_newest_first_up_to_the_limit(hourly: Path) -> None:
    assert ids(read_payloads(hourly, "ep")) == [f"req-{i:06d}" for i in reversed(range(10))]
    assert ids(read_payloads(hourly, "ep", limit=3)) == ["req-000009", "req-000008", "req-000007"]
    assert ids(read_payloads(hourly, "ep", limit=3, newest_first=False)) == [
        "req-000000",
        "req-000001",
        "req-000002",
    ]


def test_since_is_inclusive_and_until_exclusive_across_days(hourly: Path) -> None:
    rows = read_payloads(hourly, "ep", since_ms=T0 + HOUR_MS, until_ms=T0 + 4 * HOUR_MS)

    assert ids(rows) == ["req-000003", "req-000002", "req-000001"]
    assert ids(read_payloads(hourly, "ep", until_ms=T0 + HOUR_MS)) == ["req-000000"]
    assert ids(read_payloads(hourly, "ep", since_ms=T0 + 9 * HOUR_MS)) == ["req-000009"]
    assert read_payloads(hourly, "ep", since_ms=T0 + 10 * HOUR_MS) == []


def test_rows_sharing_a_time_past_the_limit_are_cut_at_the_limit_in_id_order(
    tmp_path: Path,
) -> None:
    capture(tmp_path, [record(i, timestamp_ms=T0 + i // 4) for i in range(20)])

    assert ids(read_payloads(tmp_path, "ep", limit=6)) == [
        "req-000016",
        "req-000017",
        "req-000018",
        "req-000019",
        "req-000012",
        "req-000013",
    ]


def test_files_being_written_are_skipped(hourly: Path) -> None:
    partition = hourly / "ep" / "date=2023-11-15"
    (partition / ".part-1-0123456789abcdef0123456789abcdef.parquet.tmp").write_bytes(b"PAR1")

    assert len(read_payloads(hourly, "ep")) == 10


def test_an_endpoint_name_that_could_leave_the_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="not an endpoint name"):
        read_payloads(tmp_path / "inference", "..")


def test_the_schema_description_names_every_column_and_the_partition() -> None:
    described = schema_description()

    assert [column["name"] for column in described] == [*arrow_schema().names, "date"]
    assert all(column["meaning"] for column in described)
    assert {column["name"]: column["type"] for column in described}["timestamp_ms"] == "int64"
    assert [column["name"] for column in described if column["nullable"]] == [
        "client_request_id",
        "error",
        "ttft_ms",
        "itl_ms",
    ]


def test_days_outside_the_window_are_never_opened_and_a_bad_file_is_named(hourly: Path) -> None:
    (hourly / "ep" / "date=2023-11-14" / "part-1-corrupt.parquet").write_bytes(b"not parquet")

    assert len(read_payloads(hourly, "ep", since_ms=T0 + 2 * HOUR_MS)) == 8
    with pytest.raises(BerthError, match=r"could not read .*/part-1-corrupt\.parquet"):
        read_payloads(hourly, "ep")
