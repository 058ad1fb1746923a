"""Secret scopes and their secrets, as rows; values arrive and leave sealed (ciphertext only)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from berth.core.errors import AlreadyExists, Conflict, NotFound
from berth.store.tables import SecretRow, SecretScopeRow


@dataclass(frozen=True, slots=True)
class ScopeInfo:
    name: str
    creator: str
    created_at: int


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """What may be shown of a secret: never its value."""

    key: str
    creator: str
    last_updated: int


def create_scope(
    session: Session, name: str, *, creator: str, initial_manage_principal: str | None, now_ms: int
) -> None:
    if session.scalar(select(SecretScopeRow.id).where(SecretScopeRow.name == name)) is not None:
        raise _scope_exists(name)
    session.add(
        SecretScopeRow(
            name=name,
            creator=creator,
            initial_manage_principal=initial_manage_principal,
            created_at=now_ms,
        )
    )
    try:
        session.flush()
    except IntegrityError as exc:
        raise _scope_exists(name) from exc


def list_scopes(session: Session) -> list[ScopeInfo]:
    rows = session.scalars(select(SecretScopeRow).order_by(SecretScopeRow.name))
    return [ScopeInfo(row.name, row.creator, row.created_at) for row in rows]


def delete_scope(session: Session, name: str) -> None:
    found = scope_id(session, name)
    session.execute(delete(SecretRow).where(SecretRow.scope_id == found))
    session.execute(delete(SecretScopeRow).where(SecretScopeRow.id == found))


def put_secret(
    session: Session, scope: str, key: str, *, ciphertext: bytes, creator: str, now_ms: int
) -> None:
    """Insert the secret or overwrite its value."""
    found = scope_id(session, scope)
    row = session.scalar(select(SecretRow).where(SecretRow.scope_id == found, SecretRow.key == key))
    if row is None:
        row = SecretRow(scope_id=found, key=key)
        session.add(row)
    row.ciphertext, row.creator, row.last_updated = ciphertext, creator, now_ms
    try:
        session.flush()
    except IntegrityError as exc:
        # Not ``exc`` in the message: its parameters hold the ciphertext.
        raise Conflict(
            f"Secret '{key}' in scope '{scope}' was written by another request at the same "
            "time: put it again."
        ) from exc


def list_secrets(session: Session, scope: str) -> list[SecretInfo]:
    rows = session.scalars(
        select(SecretRow)
        .where(SecretRow.scope_id == scope_id(session, scope))
        .order_by(SecretRow.key)
    )
    return [SecretInfo(row.key, row.creator, row.last_updated) for row in rows]


def delete_secret(session: Session, scope: str, key: str) -> None:
    session.delete(_secret(session, scope, key))


def sealed_value(session: Session, scope: str, key: str) -> bytes:
    """The stored ciphertext of one secret."""
    return _secret(session, scope, key).ciphertext


def _secret(session: Session, scope: str, key: str) -> SecretRow:
    found = session.scalar(
        select(SecretRow).where(
            SecretRow.scope_id == scope_id(session, scope), SecretRow.key == key
        )
    )
    if found is None:
        raise NotFound(f"Secret '{key}' does not exist in scope '{scope}'.")
    return found


def scope_id(session: Session, name: str) -> int:
    """The scope's row id; ``NotFound`` when there is no such scope."""
    found = session.scalar(select(SecretScopeRow.id).where(SecretScopeRow.name == name))
    if found is None:
        raise NotFound(f"Secret scope '{name}' does not exist.")
    return found


def _scope_exists(name: str) -> AlreadyExists:
    return AlreadyExists(f"Secret scope '{name}' already exists: choose another name.")
