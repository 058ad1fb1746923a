"""``GET /api/2.0/berth/data-plane``: the controller's snapshots, for gateways in other processes.

A long poll: ``?after=<version>`` answers as soon as a newer snapshot exists, or after
``timeout`` seconds with the current one. Admins only: it carries every live token hash.
External models' credentials travel sealed with the server's secret key.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from berth.api.deps import PrincipalDep, ServicesDep
from berth.core.errors import InvalidParameter, PermissionDenied
from berth.core.latency import BUCKETS
from berth.core.load import report_from_json
from berth.core.usage import UsageKey, UsageSum
from berth.store import usage

router = APIRouter(tags=["data plane"])
POLL_SLICE_S = 1.0
JSON = "application/json"


@router.get("/api/2.0/berth/data-plane")
async def data_plane(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    after: Annotated[int, Query(ge=-1, le=2**53)] = -1,
    timeout: Annotated[float, Query(ge=0, le=60)] = 30.0,
) -> Response:
    """Waits in slices, so a follower that went away (a stopped gateway) does not hold the
    server's shutdown for the rest of its poll."""
    if not principal.is_admin:
        raise PermissionDenied("Only admins may read the data-plane snapshot.")
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        snapshot = await services.bus.newer_than(after, min(max(remaining, 0), POLL_SLICE_S))
        if snapshot.version > after or remaining <= POLL_SLICE_S or await request.is_disconnected():
            return Response(services.sealed_snapshots.body(snapshot), media_type=JSON)


COUNT = Field(ge=0, le=2**53)
"""Sums a gateway reports: never negative, and within what every store's integers hold."""
NAME = Field(max_length=255)


class UsageRow(BaseModel):
    minute: int = COUNT
    endpoint: str = NAME
    served_entity: str = NAME
    principal: str = NAME
    status: int = Field(ge=100, le=599)
    requests: int = COUNT
    input_tokens: int = COUNT
    output_tokens: int = COUNT
    latency_ms: float = Field(ge=0, le=1e15, allow_inf_nan=False)
    latency_buckets: list[Annotated[int, COUNT]] | None = Field(
        default=None, min_length=BUCKETS, max_length=BUCKETS
    )
    """Requests per latency bucket; a gateway of a berth before the metrics history sends none."""


class UsageReport(BaseModel):
    usage: list[UsageRow]


@router.post("/api/2.0/berth/data-plane/usage")
def report_usage(
    body: UsageReport, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Usage sums from a gateway in another process (``berth gateway``), for the store."""
    if not principal.is_admin:
        raise PermissionDenied("Only admins (gateway processes) may report usage.")
    sums = {
        UsageKey(r.minute, r.endpoint, r.served_entity, r.principal, r.status): UsageSum(
            r.requests,
            r.input_tokens,
            r.output_tokens,
            r.latency_ms,
            r.latency_buckets or [0] * BUCKETS,
        )
        for r in body.usage
    }
    with services.db.transaction() as session:
        usage.add(session, sums)
    return {}


class LoadReportBody(BaseModel):
    source: str = Field(min_length=1, max_length=200)
    """The reporting gateway process, e.g. ``<host>:<pid>``: its report replaces its last."""
    load: list[list[Any]]
    """``[endpoint, served_entity, in_flight, waiting, busy_s, served]`` rows."""


@router.post("/api/2.0/berth/data-plane/load")
def report_load(
    body: LoadReportBody, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Demand seen by a gateway in another process, for the autoscaler."""
    if not principal.is_admin:
        raise PermissionDenied("Only admins (gateway processes) may report load.")
    try:
        report = report_from_json(body.load)
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from exc
    services.controller.report_load(body.source, report)
    return {}
