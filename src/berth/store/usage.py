"""Per-minute usage sums: added to in batches, summarised by endpoint, principal and day, and
read back per minute for the metrics history."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.core.latency import BUCKETS
from berth.core.usage import UNATTRIBUTED, UsageKey, UsageSum
from berth.store.tables import UsageRow


@dataclass(frozen=True, slots=True)
class UsageSummary:
    endpoint: str | None
    principal: str | None
    day: str | None
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    mean_latency_ms: float


def add(session: Session, sums: Mapping[UsageKey, UsageSum]) -> None:
    """Add ``sums`` to the stored ones (a row per key, made on first use). The rows a flush
    touches are read in a few statements, not one per key: a gateway flushes a sum per busy
    endpoint, and 1,000 single-row reads were most of a flush's time."""
    stored = _stored(session, list(sums))
    for key, value in sums.items():
        row = stored.get(key)
        if row is None:
            row = UsageRow(
                minute=key.minute,
                endpoint=key.endpoint,
                served_entity=key.served_entity,
                principal=key.principal,
                status=key.status,
                requests=0,
                input_tokens=0,
                output_tokens=0,
                latency_ms=0.0,
            )
            session.add(row)
        row.requests += value.requests
        row.input_tokens += value.input_tokens
        row.output_tokens += value.output_tokens
        row.latency_ms += value.latency_ms
        # A new list, not one changed in place: SQLAlchemy sees a JSON column change only so.
        row.latency_buckets = [
            a + b
            for a, b in zip(
                row.latency_buckets or [0] * BUCKETS, value.latency_buckets, strict=True
            )
        ]


READ_CHUNK = 500
"""Keys whose rows one statement reads: far below every store's bound on parameters."""


def _stored(session: Session, keys: list[UsageKey]) -> dict[UsageKey, UsageRow]:
    """The stored rows of ``keys``, by key: those of their minutes and endpoints, read a chunk
    of keys at a time (other rows of those minutes and endpoints come along, unused)."""
    found: dict[UsageKey, UsageRow] = {}
    for start in range(0, len(keys), READ_CHUNK):
        chunk = keys[start : start + READ_CHUNK]
        query = select(UsageRow).where(
            UsageRow.minute.in_({k.minute for k in chunk}),
            UsageRow.endpoint.in_({k.endpoint for k in chunk}),
        )
        for row in session.scalars(query):
            key = UsageKey(row.minute, row.endpoint, row.served_entity, row.principal, row.status)
            found[key] = row
    return found


def per_minute(
    session: Session, endpoint: str, since_ms: int, until_ms: int
) -> Iterator[tuple[UsageKey, UsageSum]]:
    """The stored sums of ``endpoint`` (its id) over ``[since_ms, until_ms)``, callers
    attributed or not; a row written before latency buckets were kept reads as none counted."""
    query = select(UsageRow).where(
        UsageRow.endpoint == endpoint, UsageRow.minute >= since_ms, UsageRow.minute < until_ms
    )
    for row in session.scalars(query):
        yield (
            UsageKey(row.minute, row.endpoint, row.served_entity, row.principal, row.status),
            UsageSum(
                row.requests,
                row.input_tokens,
                row.output_tokens,
                row.latency_ms,
                list(row.latency_buckets or [0] * BUCKETS),
            ),
        )


def summarise(
    session: Session,
    *,
    by: tuple[str, ...],
    since_ms: int,
    until_ms: int,
    endpoint: str | None = None,
    visible: Callable[[str, str], bool] | None = None,
) -> list[UsageSummary]:
    """Sums over ``[since_ms, until_ms)`` grouped by any of ``endpoint``, ``principal``,
    ``day`` (UTC); only ``endpoint``'s rows when given, and only rows ``visible(endpoint,
    principal)`` allows. Sums kept for the metrics history alone (no caller) are left out."""
    query = select(UsageRow).where(
        UsageRow.minute >= since_ms,
        UsageRow.minute < until_ms,
        UsageRow.principal != UNATTRIBUTED,
    )
    if endpoint is not None:
        query = query.where(UsageRow.endpoint == endpoint)
    groups: dict[tuple[str | None, str | None, str | None], list[UsageRow]] = {}
    for row in session.scalars(query):
        if visible is not None and not visible(row.endpoint, row.principal):
            continue
        date = datetime.fromtimestamp(row.minute / 1000, UTC).date().isoformat()
        key = (
            row.endpoint if "endpoint" in by else None,
            row.principal if "principal" in by else None,
            date if "day" in by else None,
        )
        groups.setdefault(key, []).append(row)
    found = []
    for (name, who, day), rows in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        requests = sum(r.requests for r in rows)
        found.append(
            UsageSummary(
                name,
                who,
                day,
                requests,
                sum(r.requests for r in rows if r.status >= 400),
                sum(r.input_tokens for r in rows),
                sum(r.output_tokens for r in rows),
                sum(r.latency_ms for r in rows) / requests if requests else 0.0,
            )
        )
    return found
