"""Users and service principals (one namespace of names), and the groups each belongs to.

An inactive principal's tokens stay stored but count for nothing (``berth.store.tokens``), so
deactivation is undone by activating again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from berth.core.errors import AlreadyExists, NotFound
from berth.core.principal import PrincipalKind
from berth.store.listing import Match, Page, compare
from berth.store.tables import GroupMemberRow, GroupRow, PrincipalRow, TokenRow

NOUNS = {PrincipalKind.USER: "User", PrincipalKind.SERVICE_PRINCIPAL: "Service principal"}


@dataclass(frozen=True, slots=True)
class GroupRef:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class PrincipalInfo:
    id: int
    name: str
    kind: PrincipalKind
    display_name: str
    active: bool
    created_at: int
    groups: tuple[GroupRef, ...]


def ensure_principal(
    session: Session, name: str, kind: PrincipalKind, now_ms: int, display_name: str = ""
) -> int:
    row = session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
    if row is None:
        row = PrincipalRow(name=name, kind=kind.value, display_name=display_name, created_at=now_ms)
        session.add(row)
        session.flush()
    return row.id


def create_principal(
    session: Session,
    *,
    name: str,
    kind: PrincipalKind,
    display_name: str,
    active: bool,
    now_ms: int,
) -> PrincipalInfo:
    taken = session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
    if taken is not None:
        raise _principal_exists(name, PrincipalKind(taken.kind))
    row = PrincipalRow(
        name=name, kind=kind.value, display_name=display_name, active=active, created_at=now_ms
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise _principal_exists(name, kind) from exc
    return _principal_info(row, ())


def get_principal(session: Session, principal_id: int, kind: PrincipalKind) -> PrincipalInfo:
    return _principal_info(
        _principal_row(session, principal_id, kind),
        groups_of(session, [principal_id]).get(principal_id, ()),
    )


def principal_named(session: Session, name: str) -> PrincipalInfo | None:
    return _principal_or_none(
        session, session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
    )


def principal_with_id(session: Session, principal_id: int) -> PrincipalInfo | None:
    """A user or a service principal, whichever ``principal_id`` is."""
    return _principal_or_none(session, session.get(PrincipalRow, principal_id))


def _principal_or_none(session: Session, row: PrincipalRow | None) -> PrincipalInfo | None:
    if row is None:
        return None
    return _principal_info(row, groups_of(session, [row.id]).get(row.id, ()))


def list_principals(
    session: Session, kind: PrincipalKind, match: Match | None, offset: int, limit: int
) -> Page[PrincipalInfo]:
    """One page of the principals of ``kind`` that ``match``, by id."""
    where = [PrincipalRow.kind == kind.value]
    if match is not None:
        where.append(compare(_PRINCIPAL_FIELDS[match.field], match))
    total = session.scalar(select(func.count()).select_from(PrincipalRow).where(*where)) or 0
    rows = session.scalars(
        select(PrincipalRow).where(*where).order_by(PrincipalRow.id).offset(offset).limit(limit)
    ).all()
    groups = groups_of(session, [row.id for row in rows])
    return Page(total, [_principal_info(row, groups.get(row.id, ())) for row in rows])


def update_principal(
    session: Session,
    principal_id: int,
    kind: PrincipalKind,
    *,
    display_name: str | None = None,
    active: bool | None = None,
) -> PrincipalInfo:
    """Change what is given; ``None`` leaves a field as it is."""
    row = _principal_row(session, principal_id, kind)
    if display_name is not None:
        row.display_name = display_name
    if active is not None:
        row.active = active
    session.flush()
    return get_principal(session, principal_id, kind)


def delete_principal(session: Session, principal_id: int, kind: PrincipalKind) -> None:
    """Delete the principal with its tokens and group memberships."""
    _principal_row(session, principal_id, kind)
    session.execute(delete(TokenRow).where(TokenRow.principal_id == principal_id))
    session.execute(delete(GroupMemberRow).where(GroupMemberRow.principal_id == principal_id))
    session.execute(delete(PrincipalRow).where(PrincipalRow.id == principal_id))


_PRINCIPAL_FIELDS = {
    "id": PrincipalRow.id,
    "name": PrincipalRow.name,
    "display_name": PrincipalRow.display_name,
}


def groups_of(session: Session, principal_ids: Iterable[int]) -> dict[int, tuple[GroupRef, ...]]:
    """Principal id → the groups it belongs to, by group id (left out when none)."""
    found: dict[int, list[GroupRef]] = {}
    for principal_id, group_id, name in session.execute(
        select(GroupMemberRow.principal_id, GroupRow.id, GroupRow.name)
        .join(GroupRow, GroupRow.id == GroupMemberRow.group_id)
        .where(GroupMemberRow.principal_id.in_(list(principal_ids)))
        .order_by(GroupRow.id)
    ):
        found.setdefault(principal_id, []).append(GroupRef(group_id, name))
    return {k: tuple(v) for k, v in found.items()}


def ids_of(session: Session, names: Collection[str]) -> dict[str, int]:
    """Name → id of the principals named (unknown names are left out)."""
    if not names:
        return {}
    rows = session.execute(
        select(PrincipalRow.name, PrincipalRow.id).where(PrincipalRow.name.in_(names))
    )
    return {name: principal_id for name, principal_id in rows}


def _principal_row(session: Session, principal_id: int, kind: PrincipalKind) -> PrincipalRow:
    row = session.get(PrincipalRow, principal_id)
    if row is None or row.kind != kind.value:
        raise NotFound(f"{NOUNS[kind]} with id '{principal_id}' does not exist.")
    return row


def _principal_info(row: PrincipalRow, groups: tuple[GroupRef, ...]) -> PrincipalInfo:
    return PrincipalInfo(
        row.id,
        row.name,
        PrincipalKind(row.kind),
        row.display_name,
        row.active,
        row.created_at,
        groups,
    )


def _principal_exists(name: str, kind: PrincipalKind) -> AlreadyExists:
    return AlreadyExists(
        f"{NOUNS[kind]} '{name}' already exists: users and service principals share one "
        "namespace of names; pick another."
    )
