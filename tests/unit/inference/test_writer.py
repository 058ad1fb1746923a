"""CaptureWriter: real Parquet files under tmp_path, read back with pyarrow."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.dataset as ds  # type: ignore[import-untyped]
import pytest

from berth.inference import CaptureCounts, CaptureWriter, read_payloads
from berth.inference.writer import ROW_OVERHEAD_BYTES
from tests.support.inference import T0, record
from tests.support.net import wait_until

DAY_MS = 86_400_000


class FixedClock:
    def now_ms(self) -> int:
        return 1_234_567


def standard_table(directory: Path) -> pa.Table:
    """Read as any hive-aware reader would, with nothing of berth's own reader involved."""
    return ds.dataset(directory, format="parquet", partitioning="hive").to_table()


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_a_thousand_records_are_read_back_with_their_bodies(tmp_path: Path) -> None:
    records = [record(i) for i in range(1000)]
    with CaptureWriter(tmp_path, flush_rows=300) as writer:
        assert all(writer.offer(r, 1.0) for r in records)
    rows = {row["request_id"]: row for row in standard_table(tmp_path / "ep").to_pylist()}

    assert len(rows) == 1000
    for r in records:
        row = rows[r.request_id]
        assert row["request"] == r.request.decode()
        assert row["response"] == r.response.decode()
        assert row["client_request_id"] == r.client_request_id
        assert row["error"] == r.error
        assert (row["status_code"], row["input_tokens"], row["latency_ms"]) == (
            r.status_code,
            r.input_tokens,
            r.latency_ms,
        )
        assert not row["request_truncated"] and not row["response_truncated"]
        assert str(row["date"]) == "2023-11-14"
    files = files_under(tmp_path)
    assert writer.counts() == {"ep": CaptureCounts(rows_written=1000, files_written=len(files))}


def test_sampling_keeps_the_requests_whose_id_hash_falls_under_the_fraction(
    tmp_path: Path,
) -> None:
    records = [record(i) for i in range(4000)]
    expected = {r.request_id for r in records if zlib.crc32(r.request_id.encode()) % 10_000 < 2_500}
    with CaptureWriter(tmp_path) as writer:
        offered = {r.request_id for r in records if writer.offer(r, 0.25)}
    written = set(standard_table(tmp_path / "ep").column("request_id").to_pylist())

    assert offered == written == expected
    assert 800 < len(expected) < 1200


@pytest.mark.parametrize(
    ("body", "limit", "kept", "truncated"),
    [
        ("abcd", 4, "abcd", False),
        ("abcde", 4, "abcd", True),
        ("abcé", 4, "abc", True),  # é is 2 bytes: the cap falls inside it
        ("ab€x", 4, "ab", True),  # € is 3 bytes
        ("a😀", 4, "a", True),  # 😀 is 4 bytes
        ("😀😀", 4, "😀", True),  # the cap falls right after a whole character
    ],
)
def test_bodies_are_cut_at_the_limit_on_a_character_boundary(
    tmp_path: Path, body: str, limit: int, kept: str, truncated: bool
) -> None:
    with CaptureWriter(tmp_path, max_body_bytes=limit) as writer:
        writer.offer(record(1, request=body.encode(), response=body.encode()), 1.0)
    (row,) = standard_table(tmp_path / "ep").to_pylist()

    assert (row["request"], row["request_truncated"]) == (kept, truncated)
    assert (row["response"], row["response_truncated"]) == (kept, truncated)


def test_a_body_that_is_not_utf8_is_kept_as_text_with_replacement_characters(
    tmp_path: Path,
) -> None:
    with CaptureWriter(tmp_path) as writer:
        writer.offer(record(1, request=b"ok \xff\xfe end"), 1.0)
        writer.offer(record(2, request=b"plain"), 1.0)
    rows = standard_table(tmp_path / "ep").to_pylist()

    assert [row["request"] for row in rows] == ["ok \ufffd\ufffd end", "plain"]


def test_a_full_buffer_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    body = b"x" * 1024
    room = 64 * 1024
    per_row = 2 * len(body) + ROW_OVERHEAD_BYTES
    # Neither a row count nor the interval may write during the test: only the bound acts.
    with CaptureWriter(
        tmp_path, max_pending_bytes=room, flush_rows=10**9, flush_interval_s=3600
    ) as writer:
        kept = sum(
            writer.offer(record(i, request=body, response=body), 1.0) for i in range(100_000)
        )
        assert kept == room // per_row
        assert writer.counts()["ep"].rows_dropped == 100_000 - kept

        writer.flush()
        assert writer.offer(record(100_000, request=body, response=body), 1.0)

    assert writer.counts()["ep"] == CaptureCounts(
        rows_written=kept + 1, rows_dropped=100_000 - kept, files_written=2
    )


def test_the_thread_writes_when_a_batch_fills_without_being_asked(tmp_path: Path) -> None:
    with CaptureWriter(tmp_path, flush_rows=10, flush_interval_s=3600) as writer:
        for i in range(10):
            writer.offer(record(i), 1.0)
        wait_until(
            lambda: writer.counts().get("ep", CaptureCounts()).rows_written == 10,
            timeout=10,
            what="a full batch written",
        )


def test_the_thread_writes_when_the_interval_passes_without_being_asked(tmp_path: Path) -> None:
    with CaptureWriter(tmp_path, flush_rows=1000, flush_interval_s=0.05) as writer:
        writer.offer(record(1), 1.0)
        wait_until(
            lambda: writer.counts().get("ep", CaptureCounts()).rows_written == 1,
            timeout=10,
            what="a row written after the interval",
        )


def test_rows_are_partitioned_by_the_day_of_their_timestamp(tmp_path: Path) -> None:
    midnight = (T0 // DAY_MS + 1) * DAY_MS
    with CaptureWriter(tmp_path, clock=FixedClock()) as writer:
        writer.offer(record(1, timestamp_ms=midnight - 1), 1.0)
        writer.offer(record(2, timestamp_ms=midnight), 1.0)
        writer.offer(record(3, timestamp_ms=midnight + DAY_MS - 1), 1.0)

    by_day = {
        path.parent.name: standard_table(path.parent).column("request_id").to_pylist()
        for path in files_under(tmp_path / "ep")
    }
    assert by_day == {
        "date=2023-11-14": ["req-000001"],
        "date=2023-11-15": ["req-000002", "req-000003"],
    }
    assert all(path.name.startswith("part-1234567-") for path in files_under(tmp_path))


def test_close_leaves_only_whole_parquet_files(tmp_path: Path) -> None:
    with CaptureWriter(tmp_path, flush_rows=7) as writer:
        for i in range(100):
            writer.offer(record(i, endpoint=f"ep-{i % 3}"), 1.0)

    files = files_under(tmp_path)
    assert files
    assert all(path.name.startswith("part-") and path.suffix == ".parquet" for path in files)
    assert sum(writer.counts()[f"ep-{i}"].files_written for i in range(3)) == len(files)


def test_records_offered_after_close_are_counted_as_dropped(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path)
    writer.close()

    assert not writer.offer(record(1), 1.0)
    assert writer.counts() == {"ep": CaptureCounts(rows_dropped=1)}


def test_an_unsafe_endpoint_name_is_dropped_and_logged_while_others_are_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "inference"
    with caplog.at_level(logging.ERROR), CaptureWriter(root) as writer:
        writer.offer(record(1, endpoint="../escaped"), 1.0)
        writer.offer(record(2, endpoint="ep"), 1.0)

    assert writer.counts() == {
        "../escaped": CaptureCounts(rows_dropped=1),
        "ep": CaptureCounts(rows_written=1, files_written=1),
    }
    assert [path.parent.parent.name for path in files_under(tmp_path)] == ["ep"]
    assert "could not write 1 captured rows of endpoint '../escaped'" in caplog.text


def test_every_count_is_told_to_on_tally_as_it_happens(tmp_path: Path) -> None:
    told: list[tuple[str, str, int]] = []
    writer = CaptureWriter(tmp_path, flush_rows=5, on_tally=lambda *count: told.append(count))
    with writer:
        for i in range(5):
            writer.offer(record(i), 1.0)
        wait_until(lambda: told != [], timeout=10, what="the batch of 5 to be written")
        writer.offer(record(9, endpoint="../escaped"), 1.0)
    writer.offer(record(10), 1.0)

    assert told == [("ep", "written", 5), ("../escaped", "dropped", 1), ("ep", "dropped", 1)]


def test_servers_sharing_one_table_write_at_one_instant_and_touch_no_file_but_their_own(
    tmp_path: Path,
) -> None:
    """With BERTH_SHARED_DIR every server writes the same folders: names never collide, a
    file another server is still writing is left alone, and readers see every server's rows."""
    partition = tmp_path / "ep" / "date=2023-11-14"
    partition.mkdir(parents=True)
    unfinished = partition / ".part-1234567-0123456789abcdef0123456789abcdef.parquet.tmp"
    unfinished.write_bytes(b"PAR1")
    servers = [CaptureWriter(tmp_path, clock=FixedClock()) for _ in range(2)]
    for i in range(20):
        servers[i % 2].offer(record(i), 1.0)
        servers[i % 2].flush()
    for writer in servers:
        writer.close()

    assert len(files_under(tmp_path)) == 21 and unfinished.read_bytes() == b"PAR1"
    rows = read_payloads(tmp_path, "ep", limit=100, newest_first=False)
    assert [row["request_id"] for row in rows] == [f"req-{i:06d}" for i in range(20)]
