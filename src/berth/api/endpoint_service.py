"""Serving endpoints: what the endpoint routes ask, decided apart from HTTP.

Each change checks the caller's access and writes the endpoint, its event and its audit entry
in one transaction, then nudges the controller, which rolls configs out. Provider keys given
in plain text are sealed into the endpoint's own secret scope before a config is stored.
Methods hand back stored records; the routes render them (``api/endpoint_views.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from berth.api import access, quotas
from berth.api import endpoint_events as events
from berth.api.calibration_service import CalibrationService, sized_in_throughput
from berth.api.endpoint_config import (
    NormalisedConfig,
    check_endpoint_name,
    check_update,
    merge_tags,
    normalise_config,
)
from berth.api.endpoint_views import Chunks, Scale
from berth.api.external_model_rules import check_egress
from berth.api.hardware import check_hardware
from berth.api.schemas.endpoints import (
    AiGatewayConfig,
    CreateServingEndpoint,
    EmailNotifications,
    EndpointCoreConfigInput,
    EndpointTag,
    LogConfig,
    RateLimit,
)
from berth.api.sealed_keys import check_kept_keys, drop_endpoint_scope, seal_plaintext_keys
from berth.api.services import Services
from berth.core.access_log import read_access_log
from berth.core.endpoint_config import EndpointConfigDoc, EntityState, ServedEntity, entities_of
from berth.core.errors import AlreadyExists, BerthError, Conflict, NotFound
from berth.core.gpus import host_gpus
from berth.core.ids import new_endpoint_id
from berth.core.permissions import effective_level, owner_grant
from berth.core.principal import Principal
from berth.core.states import ConfigUpdate, DeploymentState, EndpointReady, EventType
from berth.envs import OWN_ENVIRONMENT, log_path
from berth.registry.names import parse_version
from berth.store import endpoints as store
from berth.store import grants, models
from berth.store.endpoints import EndpointRecord, EventRecord

Json = dict[str, Any]
Save = Callable[[Session, str, Any, int], None]
"""A store function that writes one setting: (session, endpoint id, value, now ms)."""

ENDPOINT = access.ENDPOINT
ABORTED = EntityState(DeploymentState.ABORTED, "The update was cancelled.")


@dataclass(frozen=True, slots=True)
class _Setting:
    """One endpoint setting changed on its own (rate limits, AI gateway, ...)."""

    field: str
    """The record's field, which also names the audited action."""
    value: Any
    event: EventType
    message: str


class EndpointService:
    """Built per request from the API's ``Services`` (routes take it as ``EndpointsDep``)."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._db = services.db
        self._clock = services.clock
        self._secrets = services.secrets
        self._controller = services.controller
        self._chunks = CalibrationService(services)
        given = services.settings
        self._host_gpus = None if given.backend == "ray" else len(host_gpus(given.replicas.gpus))

    def create(self, principal: Principal, body: CreateServingEndpoint) -> EndpointRecord:
        """Store a new endpoint whose config version 1 is pending until the controller has it
        running (``config_update: IN_PROGRESS``, as Databricks answers a create)."""
        check_endpoint_name(body.name)
        config = normalise_config(body.config)
        check_egress(config.served_entities, self._services.egress)
        now = self._clock.now_ms()
        settings = self._services.settings
        with self._db.transaction() as session:
            access.check_served(
                session, config, principal, self._secrets, None, access=settings.access
            )
            quotas.check_endpoint_count(session, principal, settings.quotas)
            if store.get_endpoint(session, body.name) is not None:
                raise AlreadyExists(f"Endpoint with name '{body.name}' already exists.")
            check_hardware(session, config, self._host_gpus, self._services.images)
            formats = sized_in_throughput(session, config)
        chunks = self._chunks.checked(config, formats)
        with self._db.transaction() as session:
            quotas.check_replicas(
                session,
                principal,
                settings.quotas,
                config.served_entities,
                self._chunks.chunk_of(chunks),
            )
        endpoint_id = new_endpoint_id()
        doc = config.document(version=1, creator=principal.name, now_ms=now, start_time=now)
        doc = seal_plaintext_keys(doc, endpoint_id, self._secrets)
        record = _new_record(endpoint_id, body, config, doc, principal, now)
        try:
            with self._db.transaction() as session:
                store.insert_endpoint(session, record)
                grants.set_grant(session, ENDPOINT, record.id, owner_grant(ENDPOINT, principal))
                message = events.created(principal.name, doc)
                store.add_event(
                    session, record.id, EventType.CREATED, message, now_ms=now, config_version=1
                )
                _audit(session, principal, "create", record, now, after=doc.to_json())
        except BerthError:
            drop_endpoint_scope(record.id, self._secrets)
            raise
        self._controller.nudge()
        return record

    def list_visible(self, principal: Principal) -> list[EndpointRecord]:
        """The endpoints the caller may view."""
        with self._db.transaction() as session:
            records = store.list_endpoints(session)
            granted = grants.all_grants(session, ENDPOINT)
        return [
            record
            for record in records
            if effective_level(ENDPOINT, granted.get(record.id, ()), principal) is not None
        ]

    def get(self, principal: Principal, name: str) -> tuple[EndpointRecord, str]:
        """The endpoint and the caller's level on it (at least CAN_VIEW)."""
        with self._db.transaction() as session:
            record = _existing(session, name)
            return record, access.endpoint_level(session, record, principal, "CAN_VIEW")

    def scale(self, name: str) -> Scale:
        return self._controller.scale(name)

    def calibrations(self, record: EndpointRecord) -> Chunks:
        return self._chunks.of_endpoint(record)

    def delete(self, principal: Principal, name: str) -> None:
        with self._db.transaction() as session:
            record = access.endpoint(session, name, principal, "CAN_MANAGE")
            store.delete_endpoint(session, name)
            grants.drop_object(session, ENDPOINT, record.id)
            before = {
                "config": _json(record.config),
                "pending_config": _json(record.pending_config),
            }
            _audit(session, principal, "delete", record, self._clock.now_ms(), before=before)
        drop_endpoint_scope(record.id, self._secrets)
        self._controller.nudge()

    def update_config(
        self, principal: Principal, name: str, body: EndpointCoreConfigInput
    ) -> EndpointRecord:
        """Store the config as pending version current + 1; the controller rolls it out."""
        config = normalise_config(body)
        check_egress(config.served_entities, self._services.egress)
        now = self._clock.now_ms()
        settings = self._services.settings
        with self._db.transaction() as session:  # who may, before a chunk is measured for them
            record = access.endpoint(session, name, principal, "CAN_MANAGE")
            access.check_served(
                session, config, principal, self._secrets, record.id, access=settings.access
            )
            check_hardware(session, config, self._host_gpus, self._services.images)
            formats = sized_in_throughput(session, config)
        chunks = self._chunks.checked(config, formats)
        with self._db.transaction() as session:
            record = access.endpoint(session, name, principal, "CAN_MANAGE")
            check_update(name, record.task, config)
            if record.config_update == ConfigUpdate.IN_PROGRESS:
                raise _in_progress(record)
            access.check_served(
                session, config, principal, self._secrets, record.id, access=settings.access
            )
            quotas.check_replicas(
                session,
                principal,
                settings.quotas,
                config.served_entities,
                self._chunks.chunk_of(chunks),
                record.id,
            )
            check_kept_keys(record.config, config.served_entities, record.id)
            version = record.config_version + 1
            document = config.document(
                version=version, creator=principal.name, now_ms=now, start_time=now
            )
            pending = seal_plaintext_keys(document, record.id, self._secrets)
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
            before, after = _json(record.config), pending.to_json()
            _audit(session, principal, "update_config", record, now, before=before, after=after)
        self._controller.nudge()
        return replace(
            record, pending_config=pending, config_update=ConfigUpdate.IN_PROGRESS, updated_at=now
        )

    def cancel_update(self, principal: Principal, name: str) -> EndpointRecord:
        """berth's extension: abandon the update in progress; the current config keeps
        serving."""
        now = self._clock.now_ms()
        with self._db.transaction() as session:
            record = access.endpoint(session, name, principal, "CAN_MANAGE")
            pending = record.pending_config
            if record.config_update != ConfigUpdate.IN_PROGRESS or pending is None:
                raise Conflict(f"Endpoint '{name}' has no config update in progress to cancel.")
            aborted = pending.with_states({e.name: ABORTED for e in pending.served_entities})
            if not store.cancel_update(session, record.id, aborted, now):
                raise Conflict(
                    f"The update of endpoint '{name}' finished before it could be cancelled."
                )
            version = pending.config_version
            message = f"Config version {version} was cancelled by {principal.name}."
            store.add_event(
                session,
                record.id,
                EventType.UPDATE_CANCELED,
                message,
                now_ms=now,
                config_version=version,
            )
            _audit(session, principal, "cancel_update", record, now)
        self._controller.nudge()
        return replace(
            record,
            pending_config=aborted,
            config_update=ConfigUpdate.UPDATE_CANCELED,
            updated_at=now,
        )

    def entity_logs(self, principal: Principal, name: str, served_name: str) -> str:
        """The tail of what the served entity's replicas printed."""
        with self._db.transaction() as session:
            _served_entity(access.endpoint(session, name, principal, "CAN_VIEW"), served_name)
        return self._controller.logs(name, served_name) or ""

    def build_logs(self, principal: Principal, name: str, served_name: str) -> str:
        """uv's output for the environment the served entity's model version runs in."""
        with self._db.transaction() as session:
            record = access.endpoint(session, name, principal, "CAN_VIEW")
            served = _served_entity(record, served_name).registered_model
            if served is None:
                return "External models need no environment."
            version = models.get_version(session, served[0], parse_version(served[1]))
        environment = version.details.get("environment") or {}
        env_hash = environment.get("hash")
        if env_hash is None:
            return str(environment.get("summary", OWN_ENVIRONMENT))
        path = log_path(self._services.settings.envs_dir, env_hash)
        if not path.exists():
            return f"Environment {env_hash[:12]} has not been built yet."
        return path.read_text(errors="replace")

    def patch_tags(
        self, principal: Principal, name: str, added: list[EndpointTag], deleted: list[str]
    ) -> list[Json]:
        """Add or overwrite, and delete tags; the full resulting list."""
        now = self._clock.now_ms()
        with self._db.transaction() as session:
            record = _existing(session, name, for_update=True)
            access.endpoint_level(session, record, principal, "CAN_MANAGE")
            tags = merge_tags(record.tags, added, deleted)
            store.save_tags(session, record.id, tags, now)
            message = events.tags_changed(
                principal.name, [tag.model_dump(exclude_none=True) for tag in added], deleted
            )
            store.add_event(session, record.id, EventType.TAGS_CHANGED, message, now_ms=now)
            before, after = {"tags": record.tags}, {"tags": tags}
            _audit(session, principal, "patch_tags", record, now, before=before, after=after)
        return tags

    def put_rate_limits(
        self, principal: Principal, name: str, given: list[RateLimit] | None
    ) -> list[Json]:
        """Legacy rate limits, stored."""
        limits = _rate_limits(given)
        message = events.rate_limits_changed(principal.name, limits)
        setting = _Setting("rate_limits", limits, EventType.RATE_LIMITS_CHANGED, message)
        self._save_setting(principal, name, setting, store.save_rate_limits)
        return limits

    def put_ai_gateway(self, principal: Principal, name: str, body: AiGatewayConfig) -> Json:
        """Store the AI gateway config; an empty one clears it."""
        gateway = _dump(body)
        message = events.ai_gateway_changed(principal.name, gateway)
        setting = _Setting("ai_gateway", gateway, EventType.AI_GATEWAY_CHANGED, message)
        self._save_setting(principal, name, setting, store.save_ai_gateway)
        return gateway

    def put_notifications(
        self, principal: Principal, name: str, body: EmailNotifications | None
    ) -> Json:
        notifications = _dump(body)
        message = events.notifications_changed(principal.name, notifications)
        setting = _Setting(
            "email_notifications", notifications, EventType.NOTIFICATIONS_CHANGED, message
        )
        self._save_setting(principal, name, setting, store.save_email_notifications)
        return notifications

    def put_logging(self, principal: Principal, name: str, body: LogConfig) -> Json:
        """berth's extension: turn the access log (one JSON line per request, written by the
        gateway) and the predict log (one per model call, written by the replica) on or off
        on a running endpoint; replicas are not restarted."""
        config = body.model_dump()
        message = (
            f"Logs set by {principal.name}: access log {'on' if body.access_log else 'off'}, "
            f"predict log {'on' if body.predict_log else 'off'}."
        )
        setting = _Setting("log_config", config, EventType.LOGGING_CHANGED, message)
        self._save_setting(principal, name, setting, store.save_log_config)
        return config

    def access_logs(self, principal: Principal, name: str, lines: int) -> str:
        """The newest lines of the endpoint's access log (JSON lines, every host's merged by
        time), oldest first."""
        with self._db.transaction() as session:
            record = access.endpoint(session, name, principal, "CAN_VIEW")
        return read_access_log(self._services.settings.logs_dir, record.id, lines)

    def events(self, principal: Principal, name: str) -> list[EventRecord]:
        """Every state change of the endpoint, oldest first."""
        with self._db.transaction() as session:
            record = access.endpoint(session, name, principal, "CAN_VIEW")
            return store.list_events(session, record.id)

    def _save_setting(self, principal: Principal, name: str, setting: _Setting, save: Save) -> None:
        """Store one endpoint setting, record who changed it, and have the data plane follow."""
        now = self._clock.now_ms()
        with self._db.transaction() as session:
            record = access.endpoint(session, name, principal, "CAN_MANAGE")
            save(session, record.id, setting.value, now)
            store.add_event(session, record.id, setting.event, setting.message, now_ms=now)
            _audit(
                session,
                principal,
                f"put_{setting.field}",
                record,
                now,
                before={setting.field: getattr(record, setting.field)},
                after={setting.field: setting.value},
            )
        self._controller.nudge()


def _audit(
    session: Session,
    principal: Principal,
    action: str,
    record: EndpointRecord,
    now_ms: int,
    *,
    before: Json | None = None,
    after: Json | None = None,
) -> None:
    access.record_change(
        session,
        principal,
        f"serving-endpoints.{action}",
        (ENDPOINT, record.name),
        now_ms,
        before=before,
        after=after,
    )


def _new_record(
    endpoint_id: str,
    body: CreateServingEndpoint,
    config: NormalisedConfig,
    doc: EndpointConfigDoc,
    principal: Principal,
    now: int,
) -> EndpointRecord:
    return EndpointRecord(
        id=endpoint_id,
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


def _rate_limits(limits: list[RateLimit] | None) -> list[Json]:
    """Legacy limits apply to the whole endpoint unless keyed otherwise."""
    return [{"key": "endpoint", **_dump(limit)} for limit in limits or []]


def _dump(model: BaseModel | None) -> Json:
    return {} if model is None else model.model_dump(exclude_none=True)


def _json(doc: EndpointConfigDoc | None) -> Json | None:
    return None if doc is None else doc.to_json()


def _served_entity(record: EndpointRecord, served_name: str) -> ServedEntity:
    """The served entity named ``served_name`` in the current or pending config."""
    # The pending config comes last, so it wins a name both configs use.
    entities = {e.name: e for e in entities_of(record.config, record.pending_config)}
    if served_name not in entities:
        raise NotFound(
            f"Endpoint '{record.name}' has no served entity named '{served_name}'; "
            f"it has: {', '.join(sorted(entities)) or 'none'}."
        )
    return entities[served_name]


def _existing(session: Session, name: str, *, for_update: bool = False) -> EndpointRecord:
    record = store.get_endpoint(session, name, for_update=for_update)
    if record is None:
        raise NotFound(f"Endpoint with name '{name}' does not exist.")
    return record


def _in_progress(record: EndpointRecord) -> Conflict:
    pending = record.pending_config
    version = pending.config_version if pending is not None else record.config_version + 1
    return Conflict(
        f"Endpoint '{record.name}' has a config update in progress (version {version}); "
        "wait for it or cancel it."
    )
