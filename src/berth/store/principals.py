"""Principals, groups and hashed tokens.

An inactive principal's tokens stay stored but count for nothing: ``principal_for_token`` and
``live_tokens`` skip them, so deactivation is undone by activating again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, String, cast, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from berth.core.errors import AlreadyExists, InvalidParameter, NotFound
from berth.core.principal import Principal, PrincipalKind
from berth.store.tables import GroupMemberRow, GroupRow, PrincipalRow, TokenRow

T = TypeVar("T")

NOUNS = {PrincipalKind.USER: "User", PrincipalKind.SERVICE_PRINCIPAL: "Service principal"}


@dataclass(frozen=True, slots=True)
class GroupRef:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class PrincipalRef:
    id: int
    name: str
    kind: PrincipalKind
    display_name: str


@dataclass(frozen=True, slots=True)
class PrincipalInfo:
    id: int
    name: str
    kind: PrincipalKind
    display_name: str
    active: bool
    created_at: int
    groups: tuple[GroupRef, ...]


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: int
    name: str
    created_at: int
    members: tuple[PrincipalRef, ...]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What may be shown of a token: never its value or its hash."""

    token_id: str
    owner_id: int
    owner: str
    comment: str
    created_at: int
    expires_at: int | None
    created_by: str | None
    created_by_id: int | None
    """None when the maker is unknown (a token older than the column) or was deleted."""


@dataclass(frozen=True, slots=True)
class Match:
    """One comparison of a list filter: ``field op value``, case-insensitive."""

    field: Literal["id", "name", "display_name"]
    op: Literal["eq", "ne", "co", "sw"]
    value: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    total: int
    items: list[T]


def ensure_principal(
    session: Session, name: str, kind: PrincipalKind, now_ms: int, display_name: str = ""
) -> int:
    row = session.scalar(select(PrincipalRow).where(PrincipalRow.name == name))
    if row is None:
        row = PrincipalRow(name=name, kind=kind.value, display_name=display_name, created_at=now_ms)
        session.add(row)
        session.flush()
    return row.id


def ensure_group_member(session: Session, group: str, principal_id: int, now_ms: int) -> None:
    grp = session.scalar(select(GroupRow).where(GroupRow.name == group))
    if grp is None:
        grp = GroupRow(name=group, created_at=now_ms)
        session.add(grp)
        session.flush()
    if session.get(GroupMemberRow, (grp.id, principal_id)) is None:
        session.add(GroupMemberRow(group_id=grp.id, principal_id=principal_id))


# Principals


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
        _groups_of(session, [principal_id]).get(principal_id, ()),
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
    return _principal_info(row, _groups_of(session, [row.id]).get(row.id, ()))


def list_principals(
    session: Session, kind: PrincipalKind, match: Match | None, offset: int, limit: int
) -> Page[PrincipalInfo]:
    """One page of the principals of ``kind`` that ``match``, by id."""
    where = [PrincipalRow.kind == kind.value]
    if match is not None:
        where.append(_compare(_PRINCIPAL_FIELDS[match.field], match))
    total = session.scalar(select(func.count()).select_from(PrincipalRow).where(*where)) or 0
    rows = session.scalars(
        select(PrincipalRow).where(*where).order_by(PrincipalRow.id).offset(offset).limit(limit)
    ).all()
    groups = _groups_of(session, [row.id for row in rows])
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


# Groups


def create_group(
    session: Session, name: str, member_ids: Collection[int], now_ms: int
) -> GroupInfo:
    if session.scalar(select(GroupRow.id).where(GroupRow.name == name)) is not None:
        raise _group_exists(name)
    _check_principals(session, member_ids)
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
    where = [] if match is None else [_compare(_GROUP_FIELDS[match.field], match)]
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
    _check_principals(session, add)
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


# Tokens


def count_tokens(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(TokenRow)) or 0


def add_token(
    session: Session,
    *,
    token_id: str,
    principal_id: int,
    token_hash: str,
    comment: str,
    now_ms: int,
    expires_at: int | None,
    created_by: str | None = None,
) -> TokenInfo:
    session.add(
        TokenRow(
            id=token_id,
            principal_id=principal_id,
            token_hash=token_hash,
            comment=comment,
            created_at=now_ms,
            expires_at=expires_at,
            created_by=created_by,
        )
    )
    session.flush()
    return get_token(session, token_id)


def list_tokens(
    session: Session, *, owner_id: int | None = None, created_by: str | None = None
) -> list[TokenInfo]:
    """Tokens, oldest first, of one owner and/or one maker (all when neither is given)."""
    query = select(TokenRow, PrincipalRow.name).join(
        PrincipalRow, PrincipalRow.id == TokenRow.principal_id
    )
    if owner_id is not None:
        query = query.where(TokenRow.principal_id == owner_id)
    if created_by is not None:
        query = query.where(TokenRow.created_by == created_by)
    found = session.execute(query.order_by(TokenRow.created_at, TokenRow.id)).all()
    makers = _ids_of(session, {row.created_by for row, _ in found if row.created_by})
    return [_token_info(row, owner, makers) for row, owner in found]


def get_token(session: Session, token_id: str) -> TokenInfo:
    found = session.execute(
        select(TokenRow, PrincipalRow.name)
        .join(PrincipalRow, PrincipalRow.id == TokenRow.principal_id)
        .where(TokenRow.id == token_id)
    ).first()
    if found is None:
        raise NotFound(f"Token with id '{token_id}' does not exist.")
    row, owner = found
    return _token_info(row, owner, _ids_of(session, {row.created_by} if row.created_by else set()))


def delete_token(session: Session, token_id: str) -> None:
    session.execute(delete(TokenRow).where(TokenRow.id == token_id))


def principal_for_token(session: Session, token_hash: str, now_ms: int) -> Principal | None:
    """The active principal a live (unexpired) token belongs to, or None."""
    found = session.execute(
        select(PrincipalRow, TokenRow.expires_at)
        .join(TokenRow, TokenRow.principal_id == PrincipalRow.id)
        .where(TokenRow.token_hash == token_hash, PrincipalRow.active)
    ).first()
    if found is None:
        return None
    row, expires_at = found
    if expires_at is not None and expires_at <= now_ms:
        return None
    groups = _groups_of(session, [row.id]).get(row.id, ())
    return Principal(row.name, PrincipalKind(row.kind), frozenset(g.name for g in groups))


def live_tokens(session: Session, now_ms: int) -> dict[str, Principal]:
    """Every unexpired token hash of an active principal: what the data plane checks against."""
    members: dict[int, set[str]] = {}
    for principal_id, group in session.execute(
        select(GroupMemberRow.principal_id, GroupRow.name).join(
            GroupRow, GroupRow.id == GroupMemberRow.group_id
        )
    ):
        members.setdefault(principal_id, set()).add(group)
    found = session.execute(
        select(TokenRow.token_hash, TokenRow.expires_at, PrincipalRow)
        .join(PrincipalRow, TokenRow.principal_id == PrincipalRow.id)
        .where(PrincipalRow.active)
    )
    return {
        token_hash: Principal(row.name, PrincipalKind(row.kind), frozenset(members.get(row.id, ())))
        for token_hash, expires_at, row in found
        if expires_at is None or expires_at > now_ms
    }


# Helpers

_PRINCIPAL_FIELDS = {
    "id": PrincipalRow.id,
    "name": PrincipalRow.name,
    "display_name": PrincipalRow.display_name,
}
_GROUP_FIELDS = {"id": GroupRow.id, "name": GroupRow.name, "display_name": GroupRow.name}


def _compare(column: object, match: Match) -> ColumnElement[bool]:
    text = func.lower(cast(column, String))
    value = match.value.lower()
    if match.op == "eq":
        return text == value
    if match.op == "ne":
        return text != value
    if match.op == "co":
        return text.contains(value, autoescape=True)
    return text.startswith(value, autoescape=True)


def _principal_row(session: Session, principal_id: int, kind: PrincipalKind) -> PrincipalRow:
    row = session.get(PrincipalRow, principal_id)
    if row is None or row.kind != kind.value:
        raise NotFound(f"{NOUNS[kind]} with id '{principal_id}' does not exist.")
    return row


def _group_row(session: Session, group_id: int) -> GroupRow:
    row = session.get(GroupRow, group_id)
    if row is None:
        raise NotFound(f"Group with id '{group_id}' does not exist.")
    return row


def _check_principals(session: Session, ids: Collection[int]) -> None:
    if not ids:
        return
    known = set(session.scalars(select(PrincipalRow.id).where(PrincipalRow.id.in_(ids))))
    missing = sorted(set(ids) - known)
    if missing:
        raise InvalidParameter(
            f"No user or service principal has id {', '.join(map(str, missing))}: group "
            "members are given by the ids that the Users and ServicePrincipals APIs answer."
        )


def _groups_of(session: Session, principal_ids: Iterable[int]) -> dict[int, tuple[GroupRef, ...]]:
    found: dict[int, list[GroupRef]] = {}
    for principal_id, group_id, name in session.execute(
        select(GroupMemberRow.principal_id, GroupRow.id, GroupRow.name)
        .join(GroupRow, GroupRow.id == GroupMemberRow.group_id)
        .where(GroupMemberRow.principal_id.in_(list(principal_ids)))
        .order_by(GroupRow.id)
    ):
        found.setdefault(principal_id, []).append(GroupRef(group_id, name))
    return {k: tuple(v) for k, v in found.items()}


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


def _ids_of(session: Session, names: Collection[str]) -> dict[str, int]:
    if not names:
        return {}
    rows = session.execute(
        select(PrincipalRow.name, PrincipalRow.id).where(PrincipalRow.name.in_(names))
    )
    return {name: principal_id for name, principal_id in rows}


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


def _token_info(row: TokenRow, owner: str, makers: dict[str, int]) -> TokenInfo:
    return TokenInfo(
        token_id=row.id,
        owner_id=row.principal_id,
        owner=owner,
        comment=row.comment,
        created_at=row.created_at,
        expires_at=row.expires_at,
        created_by=row.created_by,
        created_by_id=makers.get(row.created_by) if row.created_by else None,
    )


def _principal_exists(name: str, kind: PrincipalKind) -> AlreadyExists:
    return AlreadyExists(
        f"{NOUNS[kind]} '{name}' already exists: users and service principals share one "
        "namespace of names; pick another."
    )


def _group_exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"Group '{name}' already exists; pick another name.")
