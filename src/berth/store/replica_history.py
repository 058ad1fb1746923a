"""Replica counts per minute and served entity, for the metrics history's charts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from berth.store.tables import ReplicaHistoryRow


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    minute: int
    """Epoch milliseconds at the start of the minute (UTC)."""
    endpoint: str
    """The endpoint's id: a later endpoint of the same name starts afresh."""
    served_entity: str
    ready: int
    desired: int


def record(session: Session, samples: Iterable[ReplicaSample]) -> None:
    """Each sample replaces what its minute, endpoint and entity held."""
    for sample in samples:
        key = (sample.minute, sample.endpoint, sample.served_entity)
        row = session.get(ReplicaHistoryRow, key)
        if row is None:
            row = ReplicaHistoryRow(
                minute=sample.minute, endpoint=sample.endpoint, served_entity=sample.served_entity
            )
            session.add(row)
        row.ready, row.desired = sample.ready, sample.desired


def forget_before(session: Session, minute: int) -> None:
    """Drop the samples of minutes before ``minute``."""
    session.execute(delete(ReplicaHistoryRow).where(ReplicaHistoryRow.minute < minute))


def samples(session: Session, endpoint: str, since_ms: int, until_ms: int) -> list[ReplicaSample]:
    """``endpoint``'s (its id) samples over ``[since_ms, until_ms)``, oldest first."""
    query = (
        select(ReplicaHistoryRow)
        .where(
            ReplicaHistoryRow.endpoint == endpoint,
            ReplicaHistoryRow.minute >= since_ms,
            ReplicaHistoryRow.minute < until_ms,
        )
        .order_by(ReplicaHistoryRow.minute)
    )
    return [
        ReplicaSample(row.minute, row.endpoint, row.served_entity, row.ready, row.desired)
        for row in session.scalars(query)
    ]
