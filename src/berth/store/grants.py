"""Direct permissions on endpoints, secret scopes and registered models."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from berth.core.permissions import Grant, GranteeKind, ObjectType
from berth.store.tables import GrantRow, GroupRow, PrincipalRow


def grants_on(session: Session, object_type: ObjectType, object_id: str) -> list[Grant]:
    rows = session.scalars(
        select(GrantRow)
        .where(GrantRow.object_type == object_type.value, GrantRow.object_id == object_id)
        .order_by(GrantRow.id)
    )
    return [_grant(row) for row in rows]


def all_grants(session: Session, object_type: ObjectType) -> dict[str, list[Grant]]:
    """Every grant on objects of one type, by object id: one query for a whole listing."""
    found: dict[str, list[Grant]] = {}
    rows = session.scalars(
        select(GrantRow).where(GrantRow.object_type == object_type.value).order_by(GrantRow.id)
    )
    for row in rows:
        found.setdefault(row.object_id, []).append(_grant(row))
    return found


def set_grant(session: Session, object_type: ObjectType, object_id: str, grant: Grant) -> None:
    """Give ``grant.name`` exactly ``grant.level`` (replacing its previous direct level)."""
    row = session.scalar(
        select(GrantRow).where(
            GrantRow.object_type == object_type.value,
            GrantRow.object_id == object_id,
            GrantRow.principal_kind == grant.kind.value,
            GrantRow.principal_name == grant.name,
        )
    )
    if row is None:
        session.add(
            GrantRow(
                object_type=object_type.value,
                object_id=object_id,
                principal_kind=grant.kind.value,
                principal_name=grant.name,
                level=grant.level,
            )
        )
    else:
        row.level = grant.level


def remove_grant(
    session: Session, object_type: ObjectType, object_id: str, kind: GranteeKind, name: str
) -> bool:
    result = session.execute(
        delete(GrantRow).where(
            GrantRow.object_type == object_type.value,
            GrantRow.object_id == object_id,
            GrantRow.principal_kind == kind.value,
            GrantRow.principal_name == name,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def replace_grants(
    session: Session, object_type: ObjectType, object_id: str, grants: Iterable[Grant]
) -> None:
    drop_object(session, object_type, object_id)
    session.flush()
    for grant in grants:
        set_grant(session, object_type, object_id, grant)


def drop_object(session: Session, object_type: ObjectType, object_id: str) -> None:
    """Forget every grant on an object (it was deleted)."""
    session.execute(
        delete(GrantRow).where(
            GrantRow.object_type == object_type.value, GrantRow.object_id == object_id
        )
    )


def drop_grantee(session: Session, kind: GranteeKind, name: str) -> None:
    """Forget every grant to a principal or group that was deleted, so that a later one of
    the same name starts with nothing."""
    session.execute(
        delete(GrantRow).where(
            GrantRow.principal_kind == kind.value, GrantRow.principal_name == name
        )
    )


def grantee_exists(session: Session, kind: GranteeKind, name: str) -> bool:
    if kind is GranteeKind.GROUP:
        return session.scalar(select(GroupRow.id).where(GroupRow.name == name)) is not None
    found = session.scalar(
        select(PrincipalRow.id).where(PrincipalRow.name == name, PrincipalRow.kind == kind.value)
    )
    return found is not None


def _grant(row: GrantRow) -> Grant:
    return Grant(GranteeKind(row.principal_kind), row.principal_name, row.level)
