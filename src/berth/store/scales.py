"""The replica counts the leader's controller last decided, for the servers that do not lead."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from berth.store.tables import ReplicaScaleRow

ROW = 1


def save(session: Session, body: str) -> int:
    """Replace the counts; returns their new version."""
    session.execute(
        update(ReplicaScaleRow)
        .where(ReplicaScaleRow.id == ROW)
        .values(version=ReplicaScaleRow.version + 1, body=body)
    )
    return version(session)


def version(session: Session) -> int:
    return session.execute(
        select(ReplicaScaleRow.version).where(ReplicaScaleRow.id == ROW)
    ).scalar_one()


def load(session: Session) -> tuple[int, str | None]:
    """The stored counts' version and JSON (None before the first write)."""
    row = session.execute(
        select(ReplicaScaleRow.version, ReplicaScaleRow.body).where(ReplicaScaleRow.id == ROW)
    ).one()
    return row.version, row.body
