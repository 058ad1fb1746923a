"""berth's extensions for governance: ``GET /api/2.0/berth/usage`` and ``.../audit``.

Usage is summed per minute by the data plane and summarised here by endpoint, principal and
day. Admins see everything; others see their own requests and every request to the
endpoints they manage. The audit log is for admins.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from berth.api.deps import PrincipalDep, ServicesDep
from berth.core.errors import InvalidParameter, PermissionDenied
from berth.core.permissions import ObjectType, effective_level
from berth.store import audit, grants, usage
from berth.store import endpoints as endpoint_store

router = APIRouter(prefix="/api/2.0/berth", tags=["governance"])

GROUPINGS = ("endpoint", "principal", "day")
DAY_MS = 86_400_000


@router.get("/usage")
def get_usage(
    services: ServicesDep,
    principal: PrincipalDep,
    by: Annotated[str, Query(description="Comma-separated: endpoint, principal, day.")] = (
        "endpoint,principal,day"
    ),
    since: Annotated[
        int | None, Query(ge=0, le=2**53, description="Epoch ms; default 7 days ago.")
    ] = None,
    until: Annotated[
        int | None, Query(ge=0, le=2**53, description="Epoch ms; default now.")
    ] = None,
    endpoint: Annotated[str | None, Query(description="Only this endpoint.")] = None,
) -> dict[str, Any]:
    grouping = tuple(part.strip() for part in by.split(",") if part.strip())
    unknown = [part for part in grouping if part not in GROUPINGS]
    if unknown:
        raise InvalidParameter(
            f"Cannot group usage by {', '.join(unknown)}: use {', '.join(GROUPINGS)}."
        )
    now = services.clock.now_ms()
    with services.db.transaction() as session:
        # Usage is stored by endpoint id: a deleted endpoint's usage is never shown as that of
        # a later endpoint of the same name, nor visible to its managers.
        records = endpoint_store.list_endpoints(session)
        names = {record.id: record.name for record in records}
        managed: set[str] = set()
        if not principal.is_admin:
            granted = grants.all_grants(session, ObjectType.SERVING_ENDPOINT)
            managed = {
                record.id
                for record in records
                if effective_level(
                    ObjectType.SERVING_ENDPOINT, granted.get(record.id, ()), principal
                )
                == "CAN_MANAGE"
            }
        wanted = None
        if endpoint is not None:
            wanted = next((i for i, n in names.items() if n == endpoint), "")
        found = usage.summarise(
            session,
            by=grouping,
            since_ms=since if since is not None else now - 7 * DAY_MS,
            until_ms=until if until is not None else now + 1,
            endpoint=wanted,
            visible=None
            if principal.is_admin
            else (lambda endpoint_id, who: who == principal.name or endpoint_id in managed),
        )
    return {
        "usage": [
            {
                **(
                    {"endpoint": names.get(s.endpoint or "", s.endpoint), "endpoint_id": s.endpoint}
                    if "endpoint" in grouping
                    else {}
                ),
                **({"principal": s.principal} if "principal" in grouping else {}),
                **({"day": s.day} if "day" in grouping else {}),
                "requests": s.requests,
                "errors": s.errors,
                "input_tokens": s.input_tokens,
                "output_tokens": s.output_tokens,
                "mean_latency_ms": round(s.mean_latency_ms, 3),
            }
            for s in found
        ]
    }


@router.get("/audit")
def get_audit(
    services: ServicesDep,
    principal: PrincipalDep,
    since: Annotated[int, Query(ge=0, le=2**53, description="Epoch ms.")] = 0,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Control-plane changes, newest first."""
    if not principal.is_admin:
        raise PermissionDenied("Only admins may read the audit log.")
    with services.db.transaction() as session:
        found = audit.entries(
            session,
            since_ms=since,
            object_type=object_type,
            object_id=object_id,
            actor=actor,
            limit=limit,
        )
    return {
        "entries": [
            {
                "id": e.id,
                "timestamp": e.timestamp,
                "actor": e.actor,
                "action": e.action,
                "object_type": e.object_type,
                "object_id": e.object_id,
                "before": e.before,
                "after": e.after,
            }
            for e in found
        ]
    }
