"""Prometheus text: ``GET /metrics`` for the whole server (admins, e.g. a scraper's token) and
``GET /api/2.0/serving-endpoints/{name}/metrics`` for one endpoint (``CAN_VIEW``), as
Databricks' ``export_metrics`` answers it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from berth.api import access
from berth.api.deps import PrincipalDep, ServicesDep
from berth.core.errors import PermissionDenied

router = APIRouter(tags=["metrics"])


@router.get("/metrics")
def server_metrics(services: ServicesDep, principal: PrincipalDep) -> Response:
    if not principal.is_admin:
        raise PermissionDenied(
            "Only admins may read the server's metrics; endpoint managers and viewers can read "
            "GET /api/2.0/serving-endpoints/<name>/metrics."
        )
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/2.0/serving-endpoints/{name}/metrics")
def endpoint_metrics(name: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    with services.db.transaction() as session:
        access.endpoint(session, name, principal, "CAN_VIEW")
    return Response(services.metrics.render(name), media_type=CONTENT_TYPE_LATEST)
