"""Routes of the serving-endpoints resource (``/api/2.0/serving-endpoints``).

Create, read, list, delete, config updates, tags, rate limits, AI gateway and notifications,
as the Databricks API answers them, plus ``GET .../{name}/events``. Both slash forms of the
collection answer (MLflow uses the trailing one) without redirects. Each route parses, asks
``EndpointService`` and renders; config updates only store a pending config, which the
controller rolls out.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from berth.api import endpoint_views as views
from berth.api.deps import EndpointsDep, PrincipalDep
from berth.api.endpoint_filters import EndpointFilter
from berth.api.endpoint_service import ENDPOINT
from berth.api.schemas.endpoints import (
    AiGatewayConfig,
    CreateServingEndpoint,
    EndpointCoreConfigInput,
    LogConfig,
    PatchNotifications,
    PatchTags,
    PutRateLimits,
)
from berth.core.permissions import top_level

Json = dict[str, Any]

BASE = "/api/2.0/serving-endpoints"
MANAGER = top_level(ENDPOINT)
"""The level of whoever may create or change an endpoint, as its answers show it."""

router = APIRouter(tags=["serving-endpoints"])


@router.post(BASE)
@router.post(BASE + "/", include_in_schema=False)
def create_endpoint(
    body: CreateServingEndpoint, endpoints: EndpointsDep, principal: PrincipalDep
) -> Json:
    """Store a new endpoint whose config version 1 is pending until the controller has it
    running (``config_update: IN_PROGRESS``, as Databricks answers a create)."""
    record = endpoints.create(principal, body)
    return views.detailed(record, MANAGER, chunks=endpoints.calibrations(record))


@router.get(BASE)
@router.get(BASE + "/", include_in_schema=False)
def list_endpoints(
    endpoints: EndpointsDep,
    principal: PrincipalDep,
    state: Annotated[list[str] | None, Query(description="READY, NOT_READY, ...")] = None,
    tag: Annotated[list[str] | None, Query(description="key, or key=value")] = None,
) -> Json:
    """The endpoints the caller may view; berth's ``state`` (any of them) and ``tag`` (all of
    them) narrow the list."""
    wanted = EndpointFilter.parse(state or [], tag or [])
    visible = endpoints.list_visible(principal)
    return {"endpoints": [views.summary(record) for record in visible if wanted.matches(record)]}


@router.get(BASE + "/{name}")
def get_endpoint(name: str, endpoints: EndpointsDep, principal: PrincipalDep) -> Json:
    record, level = endpoints.get(principal, name)
    return views.detailed(
        record, level, endpoints.scale(record.name), endpoints.calibrations(record)
    )


@router.delete(BASE + "/{name}")
def delete_endpoint(name: str, endpoints: EndpointsDep, principal: PrincipalDep) -> Json:
    endpoints.delete(principal, name)
    return {}


@router.put(BASE + "/{name}/config")
def update_config(
    name: str, body: EndpointCoreConfigInput, endpoints: EndpointsDep, principal: PrincipalDep
) -> Json:
    """Store the config as pending version current + 1 and answer at once."""
    record = endpoints.update_config(principal, name, body)
    return views.detailed(record, MANAGER, endpoints.scale(name), endpoints.calibrations(record))


@router.post(BASE + "/{name}/config/cancel")
def cancel_update(name: str, endpoints: EndpointsDep, principal: PrincipalDep) -> Json:
    """berth's extension: abandon the update in progress; the current config keeps serving."""
    record = endpoints.cancel_update(principal, name)
    return views.detailed(record, MANAGER, endpoints.scale(name), endpoints.calibrations(record))


@router.get(BASE + "/{name}/served-models/{served_model_name}/logs")
def served_model_logs(
    name: str, served_model_name: str, endpoints: EndpointsDep, principal: PrincipalDep
) -> Json:
    """The tail of what the served entity's replicas printed."""
    return {"logs": endpoints.entity_logs(principal, name, served_model_name)}


@router.get(BASE + "/{name}/served-models/{served_model_name}/build-logs")
def served_model_build_logs(
    name: str, served_model_name: str, endpoints: EndpointsDep, principal: PrincipalDep
) -> Json:
    """uv's output for the environment the served entity's model version runs in."""
    return {"logs": endpoints.build_logs(principal, name, served_model_name)}


@router.patch(BASE + "/{name}/tags")
def patch_tags(
    name: str, body: PatchTags, endpoints: EndpointsDep, principal: PrincipalDep
) -> Json:
    """Add or overwrite, and delete tags; answers the full resulting list."""
    added, deleted = body.add_tags or [], body.delete_tags or []
    return {"tags": endpoints.patch_tags(principal, name, added, deleted)}


@router.put(BASE + "/{name}/rate-limits")
def put_rate_limits(
    name: str, body: PutRateLimits, endpoints: EndpointsDep, principal: PrincipalDep
) -> Json:
    """Legacy rate limits, stored and echoed."""
    return {"rate_limits": endpoints.put_rate_limits(principal, name, body.rate_limits)}


@router.put(BASE + "/{name}/ai-gateway")
def put_ai_gateway(
    name: str, body: AiGatewayConfig, endpoints: EndpointsDep, principal: PrincipalDep
) -> Json:
    """Store and echo the AI gateway config; an empty one clears it."""
    return endpoints.put_ai_gateway(principal, name, body)


@router.patch(BASE + "/{name}/notifications")
def patch_notifications(
    name: str, body: PatchNotifications, endpoints: EndpointsDep, principal: PrincipalDep
) -> Json:
    notifications = endpoints.put_notifications(principal, name, body.email_notifications)
    return {"name": name, "email_notifications": notifications}


@router.put(BASE + "/{name}/logging")
def put_logging(
    name: str, body: LogConfig, endpoints: EndpointsDep, principal: PrincipalDep
) -> Json:
    """berth's extension: turn the access log (one JSON line per request, written by the
    gateway) and the predict log (one per model call, written by the replica) on or off on a
    running endpoint; replicas are not restarted."""
    return endpoints.put_logging(principal, name, body)


@router.get(BASE + "/{name}/access-logs")
def access_logs(
    name: str,
    endpoints: EndpointsDep,
    principal: PrincipalDep,
    lines: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> Json:
    """The newest lines of the endpoint's access log (JSON lines, every host's merged by
    time), oldest first."""
    return {"logs": endpoints.access_logs(principal, name, lines)}


@router.get(BASE + "/{name}/events")
def list_events(name: str, endpoints: EndpointsDep, principal: PrincipalDep) -> Json:
    """berth's extension: every state change of the endpoint, oldest first."""
    return {"events": [views.event(item) for item in endpoints.events(principal, name)]}
