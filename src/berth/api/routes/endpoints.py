"""Routes of the serving-endpoints resource (``/api/2.0/serving-endpoints``).

Create, read, list, delete, config updates, tags, rate limits, AI gateway and notifications,
as the Databricks API answers them, plus ``GET .../{name}/events``. Both slash forms of the
collection answer (MLflow uses the trailing one) without redirects. Config updates only store
a pending config; the controller rolls it out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from berth.api import access, quotas
from berth.api import endpoint_events as events
from berth.api import endpoint_views as views
from berth.api.deps import PrincipalDep, ServicesDep
from berth.api.endpoint_config import (
    NormalisedConfig,
    check_endpoint_name,
    check_update,
    merge_tags,
    normalise_config,
)
from berth.api.external_model_rules import check_egress
from berth.api.schemas.endpoints import (
    AiGatewayConfig,
    CreateServingEndpoint,
    EndpointCoreConfigInput,
    LogConfig,
    PatchNotifications,
    PatchTags,
    PutRateLimits,
    RateLimit,
)
from berth.api.sealed_keys import check_kept_keys, drop_endpoint_scope, seal_plaintext_keys
from berth.api.services import Services
from berth.core.access_log import read_access_log
from berth.core.errors import AlreadyExists, BerthError, Conflict, NotFound
from berth.core.ids import new_endpoint_id
from berth.core.permissions import effective_level, owner_grant, top_level
from berth.core.principal import Principal
from berth.core.states import ConfigUpdate, DeploymentState, EndpointReady, EventType
from berth.envs import OWN_ENVIRONMENT, log_path
from berth.registry.names import parse_version
from berth.store import endpoints as store
from berth.store import grants, models
from berth.store.endpoints import EndpointRecord
from berth.store.rollouts import with_states

Json = dict[str, Any]

BASE = "/api/2.0/serving-endpoints"
ENDPOINT = access.ENDPOINT
ABORTED = (DeploymentState.ABORTED.value, "The update was cancelled.")

router = APIRouter(tags=["serving-endpoints"])


@router.post(BASE)
@router.post(BASE + "/", include_in_schema=False)
def create_endpoint(
    body: CreateServingEndpoint, services: ServicesDep, principal: PrincipalDep
) -> Json:
    """Store a new endpoint whose config version 1 is pending until the controller has it
    running (``config_update: IN_PROGRESS``, as Databricks answers a create)."""
    check_endpoint_name(body.name)
    config = normalise_config(body.config)
    check_egress(config.served_entities, services.egress)
    now = services.clock.now_ms()
    doc = {**config.document(version=1, creator=principal.name, now_ms=now), "start_time": now}
    record = _new_record(body, config, doc, principal, now)
    with services.db.transaction() as session:
        access.check_served(
            session, config, principal, services.secrets, None, access=services.settings.access
        )
        quotas.check_endpoint_count(session, principal, services.settings.quotas)
        quotas.check_replicas(session, principal, services.settings.quotas, config.served_entities)
        if store.get_endpoint(session, body.name) is not None:
            raise AlreadyExists(f"Endpoint with name '{body.name}' already exists.")
    doc = seal_plaintext_keys(doc, record.id, services.secrets)
    record = replace(record, pending_config=doc)
    try:
        with services.db.transaction() as session:
            store.insert_endpoint(session, record)
            grants.set_grant(session, ENDPOINT, record.id, owner_grant(ENDPOINT, principal))
            message = events.created(principal.name, doc)
            store.add_event(
                session, record.id, EventType.CREATED, message, now_ms=now, config_version=1
            )
            access.record_change(
                session, principal, "serving-endpoints.create", record, now, after=doc
            )
    except BerthError:
        drop_endpoint_scope(record.id, services.secrets)
        raise
    services.controller.nudge()
    return views.detailed(record, top_level(ENDPOINT))


@router.get(BASE)
@router.get(BASE + "/", include_in_schema=False)
def list_endpoints(services: ServicesDep, principal: PrincipalDep) -> Json:
    """The endpoints the caller may view."""
    with services.db.transaction() as session:
        records = store.list_endpoints(session)
        granted = grants.all_grants(session, ENDPOINT)
    visible = [
        record
        for record in records
        if effective_level(ENDPOINT, granted.get(record.id, ()), principal) is not None
    ]
    return {"endpoints": [views.summary(record) for record in visible]}


@router.get(BASE + "/{name}")
def get_endpoint(name: str, services: ServicesDep, principal: PrincipalDep) -> Json:
    with services.db.transaction() as session:
        record = _existing(session, name)
        level = access.endpoint_level(session, record, principal, "CAN_VIEW")
    return views.detailed(record, level, services.controller.scale(record.name))


@router.delete(BASE + "/{name}")
def delete_endpoint(name: str, services: ServicesDep, principal: PrincipalDep) -> Json:
    with services.db.transaction() as session:
        record = access.endpoint(session, name, principal, "CAN_MANAGE")
        store.delete_endpoint(session, name)
        grants.drop_object(session, ENDPOINT, record.id)
        before = {"config": record.config, "pending_config": record.pending_config}
        now = services.clock.now_ms()
        access.record_change(
            session, principal, "serving-endpoints.delete", record, now, before=before
        )
    drop_endpoint_scope(record.id, services.secrets)
    services.controller.nudge()
    return {}


@router.put(BASE + "/{name}/config")
def update_config(
    name: str, body: EndpointCoreConfigInput, services: ServicesDep, principal: PrincipalDep
) -> Json:
    """Store the config as pending version current + 1 and answer at once."""
    config = normalise_config(body)
    check_egress(config.served_entities, services.egress)
    now = services.clock.now_ms()
    with services.db.transaction() as session:
        record = access.endpoint(session, name, principal, "CAN_MANAGE")
        check_update(name, record.task, config)
        if record.config_update == ConfigUpdate.IN_PROGRESS:
            raise _in_progress(record)
        access.check_served(
            session, config, principal, services.secrets, record.id, access=services.settings.access
        )
        quotas.check_replicas(
            session, principal, services.settings.quotas, config.served_entities, record.id
        )
        check_kept_keys(record.config, config.served_entities, record.id)
        version = record.config_version + 1
        document = config.document(version=version, creator=principal.name, now_ms=now)
        pending = {
            **seal_plaintext_keys(document, record.id, services.secrets),
            "start_time": now,
        }
        if not store.request_config(session, record.id, pending, now):
            raise _in_progress(record)
        message = events.config_requested(principal.name, pending)
        store.add_event(
            session,
            record.id,
            EventType.CONFIG_UPDATE_REQUESTED,
            message,
            now_ms=now,
            config_version=version,
        )
        access.record_change(
            session,
            principal,
            "serving-endpoints.update_config",
            record,
            now,
            before=record.config,
            after=pending,
        )
    services.controller.nudge()
    updated = replace(
        record, pending_config=pending, config_update=ConfigUpdate.IN_PROGRESS, updated_at=now
    )
    return views.detailed(updated, top_level(ENDPOINT), services.controller.scale(name))


@router.post(BASE + "/{name}/config/cancel")
def cancel_update(name: str, services: ServicesDep, principal: PrincipalDep) -> Json:
    """berth's extension: abandon the update in progress; the current config keeps serving."""
    now = services.clock.now_ms()
    with services.db.transaction() as session:
        record = access.endpoint(session, name, principal, "CAN_MANAGE")
        pending = record.pending_config
        if record.config_update != ConfigUpdate.IN_PROGRESS or pending is None:
            raise Conflict(f"Endpoint '{name}' has no config update in progress to cancel.")
        aborted = with_states(pending, {e["name"]: ABORTED for e in pending["served_entities"]})
        if not store.cancel_update(session, record.id, aborted, now):
            raise Conflict(
                f"The update of endpoint '{name}' finished before it could be cancelled."
            )
        version = pending["config_version"]
        message = f"Config version {version} was cancelled by {principal.name}."
        store.add_event(
            session,
            record.id,
            EventType.UPDATE_CANCELED,
            message,
            now_ms=now,
            config_version=version,
        )
        access.record_change(session, principal, "serving-endpoints.cancel_update", record, now)
    services.controller.nudge()
    return views.detailed(
        replace(
            record,
            pending_config=aborted,
            config_update=ConfigUpdate.UPDATE_CANCELED,
            updated_at=now,
        ),
        top_level(ENDPOINT),
        services.controller.scale(name),
    )


@router.get(BASE + "/{name}/served-models/{served_model_name}/logs")
def served_model_logs(
    name: str, served_model_name: str, services: ServicesDep, principal: PrincipalDep
) -> Json:
    """The tail of what the served entity's replicas printed."""
    with services.db.transaction() as session:
        _served_entity(access.endpoint(session, name, principal, "CAN_VIEW"), served_model_name)
    return {"logs": services.controller.logs(name, served_model_name) or ""}


@router.get(BASE + "/{name}/served-models/{served_model_name}/build-logs")
def served_model_build_logs(
    name: str, served_model_name: str, services: ServicesDep, principal: PrincipalDep
) -> Json:
    """uv's output for the environment the served entity's model version runs in."""
    with services.db.transaction() as session:
        record = access.endpoint(session, name, principal, "CAN_VIEW")
        entity = _served_entity(record, served_model_name)
        if entity.get("external_model") is not None:
            return {"logs": "External models need no environment."}
        version = models.get_version(
            session, entity["entity_name"], parse_version(str(entity["entity_version"]))
        )
    environment = version.details.get("environment") or {}
    env_hash = environment.get("hash")
    if env_hash is None:
        return {"logs": environment.get("summary", OWN_ENVIRONMENT)}
    path = log_path(services.settings.envs_dir, env_hash)
    if not path.exists():
        return {"logs": f"Environment {env_hash[:12]} has not been built yet."}
    return {"logs": path.read_text(errors="replace")}


@router.patch(BASE + "/{name}/tags")
def patch_tags(name: str, body: PatchTags, services: ServicesDep, principal: PrincipalDep) -> Json:
    """Add or overwrite, and delete tags; answers the full resulting list."""
    added, deleted = body.add_tags or [], body.delete_tags or []
    now = services.clock.now_ms()
    with services.db.transaction() as session:
        record = _existing(session, name, for_update=True)
        access.endpoint_level(session, record, principal, "CAN_MANAGE")
        tags = merge_tags(record.tags, added, deleted)
        store.save_tags(session, record.id, tags, now)
        message = events.tags_changed(
            principal.name, [tag.model_dump(exclude_none=True) for tag in added], deleted
        )
        store.add_event(session, record.id, EventType.TAGS_CHANGED, message, now_ms=now)
        access.record_change(
            session,
            principal,
            "serving-endpoints.patch_tags",
            record,
            now,
            before={"tags": record.tags},
            after={"tags": tags},
        )
    return {"tags": tags}


@router.put(BASE + "/{name}/rate-limits")
def put_rate_limits(
    name: str, body: PutRateLimits, services: ServicesDep, principal: PrincipalDep
) -> Json:
    """Legacy rate limits, stored and echoed."""
    limits = _rate_limits(body.rate_limits)
    _save_setting(
        name,
        services,
        principal,
        lambda session, endpoint_id, now: store.save_rate_limits(session, endpoint_id, limits, now),
        EventType.RATE_LIMITS_CHANGED,
        events.rate_limits_changed(principal.name, limits),
        ("rate_limits", limits),
    )
    return {"rate_limits": limits}


@router.put(BASE + "/{name}/ai-gateway")
def put_ai_gateway(
    name: str, body: AiGatewayConfig, services: ServicesDep, principal: PrincipalDep
) -> Json:
    """Store and echo the AI gateway config; an empty one clears it."""
    gateway = _dump(body)
    _save_setting(
        name,
        services,
        principal,
        lambda session, endpoint_id, now: store.save_ai_gateway(session, endpoint_id, gateway, now),
        EventType.AI_GATEWAY_CHANGED,
        events.ai_gateway_changed(principal.name, gateway),
        ("ai_gateway", gateway),
    )
    return gateway


@router.patch(BASE + "/{name}/notifications")
def patch_notifications(
    name: str, body: PatchNotifications, services: ServicesDep, principal: PrincipalDep
) -> Json:
    notifications = _dump(body.email_notifications)
    _save_setting(
        name,
        services,
        principal,
        lambda session, endpoint_id, now: store.save_email_notifications(
            session, endpoint_id, notifications, now
        ),
        EventType.NOTIFICATIONS_CHANGED,
        events.notifications_changed(principal.name, notifications),
        ("email_notifications", notifications),
    )
    return {"name": name, "email_notifications": notifications}


@router.put(BASE + "/{name}/logging")
def put_logging(name: str, body: LogConfig, services: ServicesDep, principal: PrincipalDep) -> Json:
    """berth's extension: turn the access log (one JSON line per request, written by the
    gateway) and the predict log (one per model call, written by the replica) on or off on a
    running endpoint; replicas are not restarted."""
    config = body.model_dump()
    _save_setting(
        name,
        services,
        principal,
        lambda session, endpoint_id, now: store.save_log_config(session, endpoint_id, config, now),
        EventType.LOGGING_CHANGED,
        f"Logs set by {principal.name}: access log {'on' if body.access_log else 'off'}, "
        f"predict log {'on' if body.predict_log else 'off'}.",
        ("log_config", config),
    )
    return config


@router.get(BASE + "/{name}/access-logs")
def access_logs(
    name: str,
    services: ServicesDep,
    principal: PrincipalDep,
    lines: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> Json:
    """The newest lines of the endpoint's access log (JSON lines), oldest first."""
    with services.db.transaction() as session:
        record = access.endpoint(session, name, principal, "CAN_VIEW")
    return {"logs": read_access_log(services.settings.logs_dir, record.id, lines)}


@router.get(BASE + "/{name}/events")
def list_events(name: str, services: ServicesDep, principal: PrincipalDep) -> Json:
    """berth's extension: every state change of the endpoint, oldest first."""
    with services.db.transaction() as session:
        record = access.endpoint(session, name, principal, "CAN_VIEW")
        found = store.list_events(session, record.id)
    return {"events": [views.event(item) for item in found]}


def _new_record(
    body: CreateServingEndpoint,
    config: NormalisedConfig,
    doc: Json,
    principal: Principal,
    now: int,
) -> EndpointRecord:
    return EndpointRecord(
        id=new_endpoint_id(),
        name=body.name,
        creator=principal.name,
        created_at=now,
        updated_at=now,
        description=body.description or "",
        config=None,
        config_version=0,
        pending_config=doc,
        ready=EndpointReady.NOT_READY,
        config_update=ConfigUpdate.IN_PROGRESS,
        task=config.task,
        tags=merge_tags([], body.tags or [], []),
        ai_gateway=_dump(body.ai_gateway) or None,
        rate_limits=_rate_limits(body.rate_limits) or None,
        route_optimized=bool(body.route_optimized),
        email_notifications=_dump(body.email_notifications) or None,
        budget_policy_id=body.budget_policy_id,
        telemetry_config=_dump(body.telemetry_config) or None,
    )


def _save_setting(
    name: str,
    services: Services,
    principal: Principal,
    save: Callable[[Session, str, int], None],
    event_type: EventType,
    message: str,
    setting: tuple[str, Any],
) -> None:
    """Store one endpoint setting (``setting`` = its record field and new value), record who
    changed it, and have the data plane follow."""
    now = services.clock.now_ms()
    field, value = setting
    with services.db.transaction() as session:
        record = access.endpoint(session, name, principal, "CAN_MANAGE")
        save(session, record.id, now)
        store.add_event(session, record.id, event_type, message, now_ms=now)
        access.record_change(
            session,
            principal,
            f"serving-endpoints.put_{field}",
            record,
            now,
            before={field: getattr(record, field)},
            after={field: value},
        )
    services.controller.nudge()


def _rate_limits(limits: list[RateLimit] | None) -> list[Json]:
    """Legacy limits apply to the whole endpoint unless keyed otherwise."""
    return [{"key": "endpoint", **_dump(limit)} for limit in limits or []]


def _dump(model: BaseModel | None) -> Json:
    return {} if model is None else model.model_dump(exclude_none=True)


def _served_entity(record: EndpointRecord, served_name: str) -> Json:
    """The served entity named ``served_name`` in the current or pending config."""
    entities = {
        entity["name"]: entity
        for doc in (record.config, record.pending_config)  # pending wins a shared name
        for entity in (doc or {}).get("served_entities", [])
    }
    if served_name not in entities:
        raise NotFound(
            f"Endpoint '{record.name}' has no served entity named '{served_name}'; "
            f"it has: {', '.join(sorted(entities)) or 'none'}."
        )
    entity: Json = entities[served_name]
    return entity


def _existing(session: Session, name: str, *, for_update: bool = False) -> EndpointRecord:
    record = store.get_endpoint(session, name, for_update=for_update)
    if record is None:
        raise _not_found(name)
    return record


def _not_found(name: str) -> NotFound:
    return NotFound(f"Endpoint with name '{name}' does not exist.")


def _in_progress(record: EndpointRecord) -> Conflict:
    pending = record.pending_config or {}
    version = pending.get("config_version", record.config_version + 1)
    return Conflict(
        f"Endpoint '{record.name}' has a config update in progress (version {version}); "
        "wait for it or cancel it."
    )
