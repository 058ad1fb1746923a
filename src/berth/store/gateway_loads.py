"""The demand each server that does not lead sees, passed to the leader through the store."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from berth.store.tables import GatewayLoadRow


def post(session: Session, server: str, report: str, now_ms: int) -> None:
    """Replace ``server``'s report (only that server writes its row)."""
    replaced = session.execute(
        update(GatewayLoadRow)
        .where(GatewayLoadRow.server == server)
        .values(report=report, at_ms=now_ms)
    )
    if replaced.rowcount == 0:  # type: ignore[attr-defined]
        session.add(GatewayLoadRow(server=server, report=report, at_ms=now_ms))


def since(session: Session, after_ms: int) -> dict[str, str]:
    """Each server's report written after ``after_ms``, by server."""
    rows = session.execute(
        select(GatewayLoadRow.server, GatewayLoadRow.report).where(GatewayLoadRow.at_ms > after_ms)
    )
    return {row.server: row.report for row in rows}
