"""``GET /api/2.0/berth/data-plane``: the controller's snapshots, for gateways in other processes.

A long poll: ``?after=<version>`` answers as soon as a newer snapshot exists, or after
``timeout`` seconds with the current one. Admins only: it carries every live token hash.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from berth.api.deps import PrincipalDep, ServicesDep
from berth.core.errors import PermissionDenied

router = APIRouter(tags=["data plane"])


@router.get("/api/2.0/berth/data-plane")
async def data_plane(
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[int, Query(ge=-1)] = -1,
    timeout: Annotated[float, Query(ge=0, le=60)] = 30.0,
) -> dict[str, Any]:
    if not principal.is_admin:
        raise PermissionDenied("Only admins may read the data-plane snapshot.")
    snapshot = await services.bus.newer_than(after, timeout)
    return snapshot.to_json()
