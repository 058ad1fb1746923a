"""Serving endpoints and their events.

``EndpointRow.config`` and ``EndpointRow.pending_config`` hold *config documents*, the
normalised Databricks JSON that the API validated (defaults applied), which records carry read
as ``berth.core.endpoint_config.EndpointConfigDoc``::

    {"config_version": 2,
     "start_time": 1700000400000,               # pending documents only
     "served_entities": [{
         "name": "iris-1", "entity_name": "iris", "entity_version": "1",
         "workload_size": "Small", "workload_type": "CPU", "scale_to_zero_enabled": false,
         ...every other ServedEntityInput key as given ("external_model" with its
         *_plaintext secrets, which only the API's views strip),
         "creator": "admin", "creation_timestamp": 1700000400000,
         "state": {"deployment": "DEPLOYMENT_CREATING",
                   "deployment_state_message": "..."}}],
     "traffic_config": {"routes": [{"served_entity_name": "iris-1", "traffic_percentage": 100}]},
     "auto_capture_config": {...}}              # only when given

``EndpointRow.config_version`` mirrors the current document's ``config_version``;
``ready`` and ``config_update`` hold ``berth.core.states`` values. Whoever drives replicas
promotes a pending document by moving it to ``config`` (without ``start_time``), or fails it
by setting ``config_update`` to ``UPDATE_FAILED`` and keeping it, and records per-entity
progress in each entity's ``state``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from berth.core.endpoint_config import EndpointConfigDoc
from berth.core.errors import AlreadyExists
from berth.core.states import ConfigUpdate, EndpointReady, EventType
from berth.store.tables import EndpointEventRow, EndpointRow, Json


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """One endpoint as stored; field names are those of ``EndpointRow``."""

    id: str
    name: str
    creator: str
    created_at: int
    updated_at: int
    description: str
    config: EndpointConfigDoc | None
    config_version: int
    pending_config: EndpointConfigDoc | None
    ready: EndpointReady
    config_update: ConfigUpdate
    task: str | None
    tags: list[Json]
    ai_gateway: Json | None
    rate_limits: list[Json] | None
    route_optimized: bool
    email_notifications: Json | None
    budget_policy_id: str | None
    telemetry_config: Json | None
    log_config: Json | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    timestamp: int
    event_type: str
    message: str
    config_version: int | None


def insert_endpoint(session: Session, record: EndpointRecord) -> None:
    """Store a new endpoint; a taken name is ``AlreadyExists``."""
    values: dict[str, Any] = {f.name: getattr(record, f.name) for f in fields(record)}
    values.update(
        config=_json(record.config),
        pending_config=_json(record.pending_config),
        ready=record.ready.value,
        config_update=record.config_update.value,
    )
    session.add(EndpointRow(**values))
    try:
        session.flush()
    except IntegrityError as exc:
        raise AlreadyExists(f"Endpoint with name '{record.name}' already exists.") from exc


def get_endpoint(session: Session, name: str, *, for_update: bool = False) -> EndpointRecord | None:
    query = select(EndpointRow).where(EndpointRow.name == name)
    row = session.scalar(query.with_for_update() if for_update else query)
    return None if row is None else _record(row)


def get_endpoint_by_id(session: Session, endpoint_id: str) -> EndpointRecord | None:
    row = session.get(EndpointRow, endpoint_id)
    return None if row is None else _record(row)


def list_endpoints(session: Session) -> list[EndpointRecord]:
    return [_record(row) for row in session.scalars(select(EndpointRow).order_by(EndpointRow.name))]


def each_endpoint(session: Session) -> list[tuple[str, Callable[[], EndpointRecord]]]:
    """Every endpoint's name, by name, with a reader of its record: a caller that must go on
    past one endpoint whose stored documents do not read (the controller) reads each apart."""
    rows = session.scalars(select(EndpointRow).order_by(EndpointRow.name)).all()
    return [(row.name, partial(_record, row)) for row in rows]


def delete_endpoint(session: Session, name: str) -> bool:
    """Remove an endpoint (its events go with it); False when there was none."""
    deleted = session.scalar(
        delete(EndpointRow).where(EndpointRow.name == name).returning(EndpointRow.id)
    )
    return deleted is not None


def request_config(
    session: Session, endpoint_id: str, pending: EndpointConfigDoc, now_ms: int
) -> bool:
    """Store a pending config unless an update is already in progress; True when stored.

    One conditional ``UPDATE`` so that of two concurrent requests exactly one wins.
    """
    stored = session.scalar(
        update(EndpointRow)
        .where(
            EndpointRow.id == endpoint_id,
            EndpointRow.config_update != ConfigUpdate.IN_PROGRESS.value,
        )
        .values(
            pending_config=pending.to_json(),
            config_update=ConfigUpdate.IN_PROGRESS.value,
            updated_at=now_ms,
        )
        .returning(EndpointRow.id)
    )
    return stored is not None


def cancel_update(
    session: Session, endpoint_id: str, pending: EndpointConfigDoc, now_ms: int
) -> bool:
    """Mark the update in progress cancelled, keeping its document; False if none was."""
    cancelled = session.scalar(
        update(EndpointRow)
        .where(
            EndpointRow.id == endpoint_id,
            EndpointRow.config_update == ConfigUpdate.IN_PROGRESS.value,
        )
        .values(
            pending_config=pending.to_json(),
            config_update=ConfigUpdate.UPDATE_CANCELED.value,
            updated_at=now_ms,
        )
        .returning(EndpointRow.id)
    )
    return cancelled is not None


def save_tags(session: Session, endpoint_id: str, tags: list[Json], now_ms: int) -> None:
    _save(session, endpoint_id, now_ms, tags=tags)


def save_ai_gateway(session: Session, endpoint_id: str, ai_gateway: Json, now_ms: int) -> None:
    _save(session, endpoint_id, now_ms, ai_gateway=ai_gateway)


def save_rate_limits(
    session: Session, endpoint_id: str, rate_limits: list[Json], now_ms: int
) -> None:
    _save(session, endpoint_id, now_ms, rate_limits=rate_limits)


def save_log_config(session: Session, endpoint_id: str, log_config: Json, now_ms: int) -> None:
    _save(session, endpoint_id, now_ms, log_config=log_config)


def save_email_notifications(
    session: Session, endpoint_id: str, notifications: Json, now_ms: int
) -> None:
    _save(session, endpoint_id, now_ms, email_notifications=notifications)


def add_event(
    session: Session,
    endpoint_id: str,
    event_type: EventType,
    message: str,
    *,
    now_ms: int,
    config_version: int | None = None,
) -> None:
    session.add(
        EndpointEventRow(
            endpoint_id=endpoint_id,
            timestamp=now_ms,
            event_type=event_type.value,
            message=message,
            config_version=config_version,
        )
    )


def list_events(session: Session, endpoint_id: str) -> list[EventRecord]:
    """Oldest first."""
    rows = session.scalars(
        select(EndpointEventRow)
        .where(EndpointEventRow.endpoint_id == endpoint_id)
        .order_by(EndpointEventRow.id)
    )
    return [EventRecord(r.timestamp, r.event_type, r.message, r.config_version) for r in rows]


def _save(session: Session, endpoint_id: str, now_ms: int, **values: object) -> None:
    session.execute(
        update(EndpointRow).where(EndpointRow.id == endpoint_id).values(updated_at=now_ms, **values)
    )


def _record(row: EndpointRow) -> EndpointRecord:
    values = {f.name: getattr(row, f.name) for f in fields(EndpointRecord)}
    values["config"] = _doc(row.config)
    values["pending_config"] = _doc(row.pending_config)
    values["ready"] = EndpointReady(row.ready)
    values["config_update"] = ConfigUpdate(row.config_update)
    return EndpointRecord(**values)


def _doc(stored: Json | None) -> EndpointConfigDoc | None:
    return None if stored is None else EndpointConfigDoc.from_json(stored)


def _json(doc: EndpointConfigDoc | None) -> Json | None:
    return None if doc is None else doc.to_json()
