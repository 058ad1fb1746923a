"""Groups of users and service principals."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from berth.core.errors import AlreadyExists, InvalidParameter, NotFound
from berth.core.principal import PrincipalKind
from berth.store.listing import Match, Page, compare
from berth.store.tables import GroupMemberRow, GroupRow, PrincipalRow


@dataclass(frozen=True, slots=True)
class PrincipalRef:
    id: int
    name: str
    kind: PrincipalKind
    display_name: str


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: int
    name: str
    created_at: int
    members: tuple[PrincipalRef, ...]


def ensure_group_member(session: Session, group: str, principal_id: int, now_ms: int) -> None:
    grp = session.scalar(select(GroupRow).where(GroupRow.name == group))
    if grp is None:
        grp = GroupRow(name=group, created_at=now_ms)
        session.add(grp)
        session.flush()
    if session.get(GroupMemberRow, (grp.id, principal_id)) is None:
        session.add(GroupMemberRow(group_id=grp.id, principal_id=principal_id))


def create_group(
    session: Session, name: str, member_ids: Collection[int], now_ms: int
) -> GroupInfo:
    if session.scalar(select(GroupRow.id).where(GroupRow.name == name)) is not None:
        raise _group_exists(name)
    _check_members(session, member_ids)
    row = GroupRow(name=name, created_at=now_ms)
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise _group_exists(name) from exc
    session.add_all(GroupMemberRow(group_id=row.id, principal_id=m) for m in set(member_ids))
    session.flush()
    return get_group(session, row.id)


def get_group(session: Session, group_id: int) -> GroupInfo:
    row = _group_row(session, group_id)
    return GroupInfo(
        row.id, row.name, row.created_at, _members_of(session, [row.id]).get(row.id, ())
    )


def list_groups(session: Session, match: Match | None, offset: int, limit: int) -> Page[GroupInfo]:
    where = [] if match is None else [compare(_GROUP_FIELDS[match.field], match)]
    total = session.scalar(select(func.count()).select_from(GroupRow).where(*where)) or 0
    rows = session.scalars(
        select(GroupRow).where(*where).order_by(GroupRow.id).offset(offset).limit(limit)
    ).all()
    members = _members_of(session, [row.id for row in rows])
    return Page(total, [GroupInfo(r.id, r.name, r.created_at, members.get(r.id, ())) for r in rows])


def change_members(
    session: Session, group_id: int, *, add: Collection[int] = (), remove: Collection[int] = ()
) -> GroupInfo:
    """Add and remove members; adding a member twice or removing a non-member is no error."""
    _group_row(session, group_id)
    _check_members(session, add)
    if remove:
        session.execute(
            delete(GroupMemberRow).where(
                GroupMemberRow.group_id == group_id, GroupMemberRow.principal_id.in_(remove)
            )
        )
    present = set(
        session.scalars(
            select(GroupMemberRow.principal_id).where(GroupMemberRow.group_id == group_id)
        )
    )
    session.add_all(GroupMemberRow(group_id=group_id, principal_id=m) for m in set(add) - present)
    session.flush()
    return get_group(session, group_id)


def delete_group(session: Session, group_id: int) -> None:
    _group_row(session, group_id)
    session.execute(delete(GroupMemberRow).where(GroupMemberRow.group_id == group_id))
    session.execute(delete(GroupRow).where(GroupRow.id == group_id))


_GROUP_FIELDS = {"id": GroupRow.id, "name": GroupRow.name, "display_name": GroupRow.name}


def _group_row(session: Session, group_id: int) -> GroupRow:
    row = session.get(GroupRow, group_id)
    if row is None:
        raise NotFound(f"Group with id '{group_id}' does not exist.")
    return row


def _members_of(session: Session, group_ids: Iterable[int]) -> dict[int, tuple[PrincipalRef, ...]]:
    found: dict[int, list[PrincipalRef]] = {}
    for group_id, row in session.execute(
        select(GroupMemberRow.group_id, PrincipalRow)
        .join(PrincipalRow, PrincipalRow.id == GroupMemberRow.principal_id)
        .where(GroupMemberRow.group_id.in_(list(group_ids)))
        .order_by(PrincipalRow.id)
    ):
        ref = PrincipalRef(row.id, row.name, PrincipalKind(row.kind), row.display_name)
        found.setdefault(group_id, []).append(ref)
    return {k: tuple(v) for k, v in found.items()}


def _group_exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"Group '{name}' already exists; pick another name.")


def _check_members(session: Session, ids: Collection[int]) -> None:
    if not ids:
        return
    known = set(session.scalars(select(PrincipalRow.id).where(PrincipalRow.id.in_(ids))))
    missing = sorted(set(ids) - known)
    if missing:
        raise InvalidParameter(
            f"No user or service principal has id {', '.join(map(str, missing))}: group "
            "members are given by the ids that the Users and ServicePrincipals APIs answer."
        )
