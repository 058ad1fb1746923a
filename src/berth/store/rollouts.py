"""The controller's writes to endpoints: promote or fail a pending config, record states.

Each write is conditional on the ``updated_at`` the controller read, so a config update,
cancel or delete that lands in between wins and the controller re-reads on its next pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from berth.core.states import ConfigUpdate
from berth.store.tables import EndpointRow, Json

EntityStates = Mapping[str, tuple[str, str]]


def with_states(document: Json, states: EntityStates) -> Json:
    """A copy of a config document whose served entities carry ``states``."""
    entities = []
    for entity in document.get("served_entities", []):
        deployment, message = states.get(entity["name"], (None, None))
        if deployment is not None:
            entity = {
                **entity,
                "state": {"deployment": deployment, "deployment_state_message": message},
            }
        entities.append(entity)
    return {**document, "served_entities": entities}


def _maybe_with_states(document: Json | None, states: EntityStates) -> Json | None:
    return None if document is None else with_states(document, states)


def promote(
    session: Session,
    endpoint_id: str,
    seen_updated_at: int,
    pending: Json,
    states: EntityStates,
    ready: str,
    now_ms: int,
) -> bool:
    """Make the pending document current; False if it is no longer the one in progress."""
    document = with_states({k: v for k, v in pending.items() if k != "start_time"}, states)
    return _conditional(
        session,
        endpoint_id,
        seen_updated_at,
        {
            "config": document,
            "config_version": int(pending["config_version"]),
            "pending_config": None,
            "config_update": ConfigUpdate.NOT_UPDATING.value,
            "ready": ready,
            "updated_at": now_ms,
        },
    )


def fail_pending(
    session: Session,
    endpoint_id: str,
    seen_updated_at: int,
    pending: Json,
    current: Json | None,
    states: tuple[EntityStates, EntityStates],
    ready: str,
    now_ms: int,
) -> bool:
    """Mark the update failed, keeping its document (with states) for people to read."""
    return _conditional(
        session,
        endpoint_id,
        seen_updated_at,
        {
            "config": _maybe_with_states(current, states[0]),
            "pending_config": with_states(pending, states[1]),
            "config_update": ConfigUpdate.UPDATE_FAILED.value,
            "ready": ready,
            "updated_at": now_ms,
        },
    )


def save_states(
    session: Session,
    endpoint_id: str,
    seen_updated_at: int,
    config: Json | None,
    pending: Json | None,
    states: tuple[EntityStates, EntityStates],
    ready: str,
) -> bool:
    """Record entity states (``updated_at`` stays: this is observation, not a change)."""
    values = {
        "config": _maybe_with_states(config, states[0]),
        "pending_config": _maybe_with_states(pending, states[1]),
        "ready": ready,
    }
    return _conditional(session, endpoint_id, seen_updated_at, values)


def _conditional(
    session: Session, endpoint_id: str, seen_updated_at: int, values: dict[str, Any]
) -> bool:
    updated = session.execute(
        update(EndpointRow)
        .where(EndpointRow.id == endpoint_id, EndpointRow.updated_at == seen_updated_at)
        .values(**values)
        .returning(EndpointRow.id)
    ).first()
    return updated is not None
