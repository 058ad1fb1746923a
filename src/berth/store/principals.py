"""Principals, groups and hashed tokens."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from berth.core.principal import Principal, PrincipalKind
from berth.store.tables import GroupMemberRow, GroupRow, PrincipalRow, TokenRow


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    principal: str
    comment: str
    created_at: int
    expires_at: int | None


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


def count_tokens(session: Session) -> int:
    return len(session.scalars(select(TokenRow.id)).all())


def add_token(
    session: Session,
    *,
    token_id: str,
    principal_id: int,
    token_hash: str,
    comment: str,
    now_ms: int,
    expires_at: int | None,
) -> None:
    session.add(
        TokenRow(
            id=token_id,
            principal_id=principal_id,
            token_hash=token_hash,
            comment=comment,
            created_at=now_ms,
            expires_at=expires_at,
        )
    )


def principal_for_token(session: Session, token_hash: str, now_ms: int) -> Principal | None:
    """The principal a live (unexpired) token belongs to, or None."""
    found = session.execute(
        select(PrincipalRow, TokenRow.expires_at)
        .join(TokenRow, TokenRow.principal_id == PrincipalRow.id)
        .where(TokenRow.token_hash == token_hash)
    ).first()
    if found is None:
        return None
    row, expires_at = found
    if expires_at is not None and expires_at <= now_ms:
        return None
    groups = session.scalars(
        select(GroupRow.name)
        .join(GroupMemberRow, GroupMemberRow.group_id == GroupRow.id)
        .where(GroupMemberRow.principal_id == row.id)
    ).all()
    return Principal(name=row.name, kind=PrincipalKind(row.kind), groups=frozenset(groups))


def live_tokens(session: Session, now_ms: int) -> dict[str, Principal]:
    """Every unexpired token hash with its principal: what the data plane checks against."""
    members: dict[int, set[str]] = {}
    for principal_id, group in session.execute(
        select(GroupMemberRow.principal_id, GroupRow.name).join(
            GroupRow, GroupRow.id == GroupMemberRow.group_id
        )
    ):
        members.setdefault(principal_id, set()).add(group)
    found = session.execute(
        select(TokenRow.token_hash, TokenRow.expires_at, PrincipalRow).join(
            PrincipalRow, TokenRow.principal_id == PrincipalRow.id
        )
    )
    return {
        token_hash: Principal(row.name, PrincipalKind(row.kind), frozenset(members.get(row.id, ())))
        for token_hash, expires_at, row in found
        if expires_at is None or expires_at > now_ms
    }
