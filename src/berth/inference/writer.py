"""Capturing payloads: `offer` buffers on the request path, a thread writes Parquet files.

`offer` runs on the gateway's event loop, so it does no I/O and never waits: it samples,
truncates, and appends under a lock held only for a list append (or for the writer's swap of
the list). A full buffer drops the record and counts it rather than slowing the request.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
import zlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from berth.core.clock import Clock, SystemClock
from berth.inference.layout import DAY_MS, day_of, part_names, partition_directory
from berth.inference.schema import PayloadRecord, arrow_schema

log = logging.getLogger(__name__)

MIB = 1 << 20

ROW_OVERHEAD_BYTES = 256
"""Charged per row on top of its bodies against the buffer's bound: ids, names, Python objects."""

_SAMPLE_BUCKETS = 10_000

Tallied = Callable[[str, str, int], None]
"""Told ``(endpoint, "written" | "dropped", rows)`` each time rows are counted."""


@dataclass(frozen=True, slots=True)
class CaptureCounts:
    """What became of one endpoint's captured rows since the writer started."""

    rows_written: int = 0
    rows_dropped: int = 0
    """Sampled in but never written: the buffer was full, the writer closed or a write failed."""
    files_written: int = 0


@dataclass(slots=True)
class _Tally:
    rows_written: int = 0
    rows_dropped: int = 0
    files_written: int = 0

    def counts(self) -> CaptureCounts:
        return CaptureCounts(self.rows_written, self.rows_dropped, self.files_written)


class _Captured(NamedTuple):
    record: PayloadRecord
    request: bytes
    request_truncated: bool
    response: bytes
    response_truncated: bool
    size: int
    folder: str


class CaptureWriter:
    """Buffers offered records in memory and writes them as Parquet from one background thread.

    A thread rather than an asyncio task: the writer needs no event loop (the stand-alone gateway,
    the server and tests use it alike), Parquet encoding does not take a slot of the loop's
    default executor, and `close` can be called from synchronous shutdown code. Files are
    written every ``flush_rows`` rows or ``flush_interval_s`` seconds, one per (endpoint, day)
    of each batch. ``max_pending_bytes`` bounds the captured bytes held, including a batch being
    written, so memory stays bounded when the disk is slow.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_body_bytes: int = MIB,
        max_pending_bytes: int = 64 * MIB,
        flush_rows: int = 1000,
        flush_interval_s: float = 5.0,
        clock: Clock | None = None,
        on_tally: Tallied | None = None,
    ) -> None:
        """``on_tally`` mirrors the counts into counters kept elsewhere: a gateway worker's
        metrics, which live in files the server renders, where ``counts`` cannot reach."""
        self._root = root
        self._max_body_bytes = max_body_bytes
        self._max_pending_bytes = max_pending_bytes
        self._flush_rows = flush_rows
        self._flush_interval_s = flush_interval_s
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: list[_Captured] = []
        self._held_bytes = 0
        self._tallies: dict[str, _Tally] = {}
        self._on_tally = on_tally
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="berth-capture", daemon=True)
        self._thread.start()

    def offer(
        self, record: PayloadRecord, sample_fraction: float, folder: str | None = None
    ) -> bool:
        """Capture ``record`` if sampled in and there is room; True when it will be written.

        ``folder`` names its table (the endpoint's id, so that a later endpoint of the same
        name starts afresh; default its name). Sampling is decided by the request id's CRC-32,
        so a given id is always in or out.
        """
        if not sampled(record.request_id, sample_fraction):
            return False
        request, request_truncated = _truncate(record.request, self._max_body_bytes)
        response, response_truncated = _truncate(record.response, self._max_body_bytes)
        size = len(request) + len(response) + ROW_OVERHEAD_BYTES
        with self._lock:
            if self._closed or self._held_bytes + size > self._max_pending_bytes:
                self._tally(record.endpoint).rows_dropped += 1
                self._told(record.endpoint, "dropped", 1)
                return False
            self._pending.append(
                _Captured(
                    record,
                    request,
                    request_truncated,
                    response,
                    response_truncated,
                    size,
                    folder or record.endpoint,
                )
            )
            self._held_bytes += size
            batch_full = len(self._pending) == self._flush_rows
        if batch_full:
            self._wake.set()
        return True

    @property
    def max_body_bytes(self) -> int:
        return self._max_body_bytes

    def flush(self) -> None:
        """Write everything offered so far, now, on the calling thread.

        It blocks on disk I/O: from an event loop, call it through ``asyncio.to_thread``.
        """
        self._write_pending()

    def close(self) -> None:
        """Refuse further records, write what is buffered and stop the thread."""
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join()

    def counts(self) -> dict[str, CaptureCounts]:
        """Rows written and dropped and files written, per endpoint."""
        with self._lock:
            return {endpoint: tally.counts() for endpoint, tally in self._tallies.items()}

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _tally(self, endpoint: str) -> _Tally:
        tally = self._tallies.get(endpoint)
        if tally is None:
            tally = self._tallies[endpoint] = _Tally()
        return tally

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            # Read before the swap: once closed, no record can arrive after it.
            closing = self._closed
            self._write_pending()
            if closing:
                return

    def _write_pending(self) -> None:
        with self._io_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            # Keyed by day number: one date made per file, not one per row.
            groups: defaultdict[tuple[str, int], list[_Captured]] = defaultdict(list)
            for item in batch:
                groups[item.folder, item.record.timestamp_ms // DAY_MS].append(item)
            for (folder, day), rows in groups.items():
                self._write_group(folder, day_of(day * DAY_MS), rows)
            with self._lock:
                self._held_bytes -= sum(item.size for item in batch)

    def _write_group(self, folder: str, day: datetime.date, rows: list[_Captured]) -> None:
        """One file; a failure is logged and its rows counted as dropped, the writer goes on."""
        endpoint = rows[0].record.endpoint
        try:
            directory = partition_directory(self._root, folder, day)
            directory.mkdir(parents=True, exist_ok=True)
            _publish(_table(rows), directory, self._clock)
        except Exception:
            log.exception("could not write %d captured rows of endpoint %r", len(rows), endpoint)
            with self._lock:
                self._tally(endpoint).rows_dropped += len(rows)
            self._told(endpoint, "dropped", len(rows))
            return
        with self._lock:
            tally = self._tally(endpoint)
            tally.rows_written += len(rows)
            tally.files_written += 1
        self._told(endpoint, "written", len(rows))

    def _told(self, endpoint: str, outcome: str, rows: int) -> None:
        if self._on_tally is not None:
            self._on_tally(endpoint, outcome, rows)


def sampled(request_id: str, fraction: float) -> bool:
    """Whether ``request_id`` is in a ``fraction`` sample: decided by its CRC-32, so callers
    can know in advance (and not collect a body that will not be kept)."""
    if fraction >= 1.0:
        return True
    if fraction <= 0.0:
        return False
    return zlib.crc32(request_id.encode()) % _SAMPLE_BUCKETS < fraction * _SAMPLE_BUCKETS


def _truncate(body: bytes, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes, never ending inside a UTF-8 character (so the text stays valid).

    The copy is what bounds memory: a slice view would keep the whole body alive.
    """
    if len(body) <= limit:
        return body, False
    cut = limit
    # The first byte left out may continue a character begun before it: cut before that
    # character's first byte, at most 3 continuation bytes back.
    for _ in range(3):
        if cut == 0 or body[cut] & 0xC0 != 0x80:
            break
        cut -= 1
    return body[:cut], True


def _columns(rows: list[_Captured]) -> dict[str, object]:
    records = [row.record for row in rows]
    return {
        "request_id": [r.request_id for r in records],
        "client_request_id": [r.client_request_id for r in records],
        "endpoint": [r.endpoint for r in records],
        "served_entity": [r.served_entity for r in records],
        "principal": [r.principal for r in records],
        "timestamp_ms": [r.timestamp_ms for r in records],
        "status_code": [r.status_code for r in records],
        "latency_ms": [r.latency_ms for r in records],
        "request": _text([row.request for row in rows]),
        "response": _text([row.response for row in rows]),
        "request_truncated": [row.request_truncated for row in rows],
        "response_truncated": [row.response_truncated for row in rows],
        "input_tokens": [r.input_tokens for r in records],
        "output_tokens": [r.output_tokens for r in records],
        "error": [r.error for r in records],
        "ttft_ms": [r.ttft_ms for r in records],
        "itl_ms": [r.itl_ms for r in records],
    }


def _table(rows: list[_Captured]) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    return pa.Table.from_pydict(_columns(rows), schema=arrow_schema())


def _text(bodies: list[bytes]) -> Any:
    """Bodies as an Arrow string column; a body that is not UTF-8 gets U+FFFD where it is not.

    Arrow validates and copies UTF-8 bytes itself, about ten times faster than decoding each
    body to a Python string first, so decoding is only the fallback.
    """
    import pyarrow as pa

    try:
        return pa.array(bodies, pa.string())
    except pa.ArrowInvalid:
        return pa.array([body.decode("utf-8", "replace") for body in bodies], pa.string())


def _publish(table: Any, directory: Path, clock: Clock) -> None:
    """Write under a temporary name, sync, rename: readers see the whole file or nothing.

    The sync comes before the rename so a power cut cannot leave a named but empty file.
    """
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    final, temporary = part_names(clock.now_ms())
    path = directory / temporary
    try:
        pq.write_table(table, path, compression="zstd")
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(path, directory / final)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
