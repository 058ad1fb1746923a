"""The controller's writes to endpoints: promote or fail a pending config, record states.

Each write is conditional on the ``updated_at`` the controller read, so a config update,
cancel or delete that lands in between wins and the controller re-reads on its next pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from berth.core.endpoint_config import EndpointConfigDoc, EntityState
from berth.core.states import ConfigUpdate, EndpointReady
from berth.store.tables import EndpointRow

EntityStates = Mapping[str, EntityState]


def promote(
    session: Session,
    endpoint_id: str,
    seen_updated_at: int,
    pending: EndpointConfigDoc,
    states: EntityStates,
    ready: EndpointReady,
    now_ms: int,
) -> bool:
    """Make the pending document current; False if it is no longer the one in progress."""
    document = replace(pending, start_time=None).with_states(states)
    return _conditional(
        session,
        endpoint_id,
        seen_updated_at,
        {
            "config": document.to_json(),
            "config_version": pending.config_version,
            "pending_config": None,
            "config_update": ConfigUpdate.NOT_UPDATING.value,
            "ready": ready.value,
            "updated_at": now_ms,
        },
    )


def fail_pending(
    session: Session,
    endpoint_id: str,
    seen_updated_at: int,
    pending: EndpointConfigDoc,
    current: EndpointConfigDoc | None,
    states: tuple[EntityStates, EntityStates],
    ready: EndpointReady,
    now_ms: int,
) -> bool:
    """Mark the update failed, keeping its document (with states) for people to read."""
    return _conditional(
        session,
        endpoint_id,
        seen_updated_at,
        {
            "config": _with_states(current, states[0]),
            "pending_config": _with_states(pending, states[1]),
            "config_update": ConfigUpdate.UPDATE_FAILED.value,
            "ready": ready.value,
            "updated_at": now_ms,
        },
    )


def save_states(
    session: Session,
    endpoint_id: str,
    seen_updated_at: int,
    config: EndpointConfigDoc | None,
    pending: EndpointConfigDoc | None,
    states: tuple[EntityStates, EntityStates],
    ready: EndpointReady,
) -> bool:
    """Record entity states (``updated_at`` stays: this is observation, not a change)."""
    values = {
        "config": _with_states(config, states[0]),
        "pending_config": _with_states(pending, states[1]),
        "ready": ready.value,
    }
    return _conditional(session, endpoint_id, seen_updated_at, values)


def _with_states(document: EndpointConfigDoc | None, states: EntityStates) -> dict[str, Any] | None:
    """The JSON of ``document`` with ``states`` recorded on its entities."""
    return None if document is None else document.with_states(states).to_json()


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
