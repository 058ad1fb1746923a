"""Prometheus text: ``GET /metrics`` for the whole server (admins, e.g. a scraper's token) and
``GET /api/2.0/serving-endpoints/{name}/metrics`` for one endpoint (``CAN_VIEW``), as
Databricks' ``export_metrics`` answers it; and berth's ``.../{name}/metrics-history``, the
last minutes per minute from the store, for charts (``CAN_VIEW``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from berth.api import access
from berth.api.deps import PrincipalDep, ServicesDep
from berth.api.metrics_history import Window, history
from berth.api.schemas.metrics_history import MetricsHistory
from berth.core.endpoint_config import entities_of
from berth.core.errors import PermissionDenied
from berth.store import replica_history, usage

LONGEST_MINUTES = 1440

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


@router.get("/api/2.0/serving-endpoints/{name}/metrics-history")
def endpoint_metrics_history(
    name: str,
    services: ServicesDep,
    principal: PrincipalDep,
    minutes: Annotated[
        int, Query(ge=1, le=LONGEST_MINUTES, description="How many minutes, the current last.")
    ] = 60,
) -> MetricsHistory:
    """The endpoint's last ``minutes`` minutes, one point a minute, per served entity and in
    total: requests, errors, p50/p99 latency, tokens and replicas (berth's extension).

    ``{"step_s": 60, "now_ms", "minutes": [epoch ms of each minute's start, oldest first],
    "last_minute_s", "series": {"<served entity>": SERIES}, "total": SERIES}``, where SERIES is
    ``{"requests", "errors", "requests_per_s", "errors_per_s", "server_errors_per_s",
    "p50_ms", "p99_ms", "input_tokens_per_s", "output_tokens_per_s", "replicas_current",
    "replicas_desired"}``, each a list with one value per minute. Every minute is present:
    zeros without traffic, null percentiles without requests, null replicas where none were
    recorded. The last minute is still going: its rates divide by ``last_minute_s``, the
    seconds it has run, not 60. Sums reach the store every 2 s and replica counts each minute
    and on change, so the last few seconds may not show yet.

    Requests are counted for every endpoint, with or without ``usage_tracking_config`` (that
    setting decides only whether they are also kept per caller for usage reports). The history
    is kept by endpoint id: an endpoint re-created under a deleted one's name starts empty.
    """
    window = Window.ending_at(services.clock.now_ms(), minutes)
    with services.db.transaction() as session:
        record = access.endpoint(session, name, principal, "CAN_VIEW")
        sums = list(usage.per_minute(session, record.id, window.first, window.end))
        samples = replica_history.samples(session, record.id, window.first, window.end)
    configured = dict.fromkeys(e.name for e in entities_of(record.config, record.pending_config))
    return history(window, sums, samples, list(configured))
