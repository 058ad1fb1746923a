"""The audit log of control-plane changes: who did what to which object, before and after."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.store.tables import AuditRow, Json


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    timestamp: int
    actor: str
    action: str
    object_type: str
    object_id: str
    before: Json | None
    after: Json | None


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    now_ms: int,
    before: Json | None = None,
    after: Json | None = None,
) -> None:
    """Add one entry in the caller's transaction, so a change and its record land together.

    ``before``/``after`` must never hold a secret's value or a token: pass what the API
    would show.
    """
    session.add(
        AuditRow(
            timestamp=now_ms,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
        )
    )


def entries(
    session: Session,
    *,
    since_ms: int = 0,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """The newest entries first."""
    query = select(AuditRow).where(AuditRow.timestamp >= since_ms)
    if object_type is not None:
        query = query.where(AuditRow.object_type == object_type)
    if object_id is not None:
        query = query.where(AuditRow.object_id == object_id)
    if actor is not None:
        query = query.where(AuditRow.actor == actor)
    rows = session.scalars(query.order_by(AuditRow.id.desc()).limit(limit))
    return [
        AuditEntry(
            r.id, r.timestamp, r.actor, r.action, r.object_type, r.object_id, r.before, r.after
        )
        for r in rows
    ]
