"""Leases in the store: one holder at a time, each acquisition with a larger fencing token.

Acquiring and renewing are each one conditional UPDATE of a row the migration seeded, so two
servers racing cannot both win: on PostgreSQL the second UPDATE waits for the first's row lock
and then re-checks its condition against the row the first wrote; SQLite writes one at a time.
Expiry is judged by the clock of the server that asks, so the servers' clocks must agree
within a fraction of the lease (NTP).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from berth.core.errors import LeaseLost
from berth.store.tables import LeaseRow

CONTROLLER = "controller"


@dataclass(frozen=True, slots=True)
class Lease:
    holder: str
    token: int
    expires_ms: int


def acquire(session: Session, name: str, holder: str, now_ms: int, ttl_ms: int) -> int | None:
    """Take the lease when it expired (or ``holder`` held it in an earlier life); returns the
    new fencing token, or None when another holds it."""
    taken = session.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name)
        .where((LeaseRow.expires_ms <= now_ms) | (LeaseRow.holder == holder))
        .values(holder=holder, token=LeaseRow.token + 1, expires_ms=now_ms + ttl_ms)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return current(session, name).token


def renew(session: Session, name: str, holder: str, token: int, now_ms: int, ttl_ms: int) -> bool:
    """Extend the lease held under ``token``; False when another acquired it since."""
    renewed = session.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name, LeaseRow.holder == holder, LeaseRow.token == token)
        .values(expires_ms=now_ms + ttl_ms)
    )
    return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]


def release(session: Session, name: str, holder: str, token: int) -> None:
    """Let the lease expire now (a server stopping), so another takes it without waiting."""
    session.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name, LeaseRow.holder == holder, LeaseRow.token == token)
        .values(expires_ms=0)
    )


def current(session: Session, name: str) -> Lease:
    row = session.execute(select(LeaseRow).where(LeaseRow.name == name)).scalar_one()
    return Lease(row.holder, row.token, row.expires_ms)


def check(session: Session, name: str, holder: str, token: int) -> None:
    """Raise `LeaseLost` unless ``holder`` still holds the lease under ``token``.

    The row stays share-locked until ``session`` ends (PostgreSQL), so no acquisition can
    slip between this check and the writes that follow it in the same transaction.
    """
    row = session.execute(
        select(LeaseRow.holder, LeaseRow.token)
        .where(LeaseRow.name == name)
        .with_for_update(read=True)
    ).one()
    if (row.holder, row.token) != (holder, token):
        raise LeaseLost(
            f"Lease {name!r} is held by {row.holder!r} under token {row.token}, no longer "
            f"by {holder!r} under token {token}: this server stops acting on it."
        )
