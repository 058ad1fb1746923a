"""Bearer tokens, stored as their SHA-256 hash with their owner, maker and expiry.

An inactive principal's tokens count for nothing: ``principal_for_token`` and ``live_tokens``
skip them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from berth.core.errors import NotFound
from berth.core.principal import Principal, PrincipalKind
from berth.store.principals import groups_of, ids_of
from berth.store.tables import GroupMemberRow, GroupRow, PrincipalRow, TokenRow


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
    makers = ids_of(session, {row.created_by for row, _ in found if row.created_by})
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
    return _token_info(row, owner, ids_of(session, {row.created_by} if row.created_by else set()))


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
    groups = groups_of(session, [row.id]).get(row.id, ())
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
