"""What each server that does not lead sees and holds, passed to the leader through the store:
its gateways' demand, and the version of the leader's routes they follow."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from berth.store.tables import GatewayLoadRow


@dataclass(frozen=True, slots=True)
class GatewayLoad:
    report: str
    """``core.load.report_to_json`` as JSON."""
    snapshot_version: int


def post(session: Session, server: str, load: GatewayLoad, now_ms: int) -> None:
    """Replace ``server``'s row (only that server writes it)."""
    values = {"report": load.report, "snapshot_version": load.snapshot_version, "at_ms": now_ms}
    replaced = session.execute(
        update(GatewayLoadRow).where(GatewayLoadRow.server == server).values(**values)
    )
    if replaced.rowcount == 0:  # type: ignore[attr-defined]
        session.add(GatewayLoadRow(server=server, **values))


def forget(session: Session, server: str) -> None:
    """``server`` stops: the leader waits for it no more."""
    session.execute(delete(GatewayLoadRow).where(GatewayLoadRow.server == server))


def since(session: Session, after_ms: int) -> dict[str, GatewayLoad]:
    """Each server's row written after ``after_ms``, by server."""
    rows = session.execute(
        select(GatewayLoadRow.server, GatewayLoadRow.report, GatewayLoadRow.snapshot_version).where(
            GatewayLoadRow.at_ms > after_ms
        )
    )
    return {row.server: GatewayLoad(row.report, row.snapshot_version) for row in rows}
