"""The data-plane snapshot the leader publishes through the store, for every server's gateway."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from berth.store.tables import DataPlaneSnapshotRow

ROW = 1


def save(session: Session, version: int, body: str) -> None:
    session.execute(
        update(DataPlaneSnapshotRow)
        .where(DataPlaneSnapshotRow.id == ROW)
        .values(version=version, body=body)
    )


def version(session: Session) -> int:
    """The stored snapshot's version; -1 before the first."""
    return session.execute(
        select(DataPlaneSnapshotRow.version).where(DataPlaneSnapshotRow.id == ROW)
    ).scalar_one()


def load(session: Session) -> tuple[int, str] | None:
    """The stored snapshot's version and JSON; None before the first."""
    row = session.execute(
        select(DataPlaneSnapshotRow.version, DataPlaneSnapshotRow.body).where(
            DataPlaneSnapshotRow.id == ROW
        )
    ).one()
    return None if row.body is None else (row.version, row.body)
