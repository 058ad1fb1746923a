"""``GET /api/2.0/berth/leader``: which server runs the controller, for operators (admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from berth.api.deps import PrincipalDep, ServicesDep
from berth.core.errors import PermissionDenied
from berth.store import leases

router = APIRouter(tags=["data plane"])


@router.get("/api/2.0/berth/leader")
def leader(services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """The lease as the store holds it: ``leader`` is null once it expired unrenewed (the
    leader died, and another takes over within ``BERTH_LEADER__FOLLOW_S``)."""
    if not principal.is_admin:
        raise PermissionDenied("Only admins may read who leads the controller.")
    with services.db.transaction() as session:
        lease = leases.current(session, leases.CONTROLLER)
    live = lease.expires_ms > services.clock.now_ms()
    return {
        "leader": lease.holder if live else None,
        "fencing_token": lease.token,
        "expires_ms": lease.expires_ms,
        "self": services.server_id,
        "leading": live and lease.holder == services.server_id,
    }
