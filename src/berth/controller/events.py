"""Readable events for the endpoint changes the controller makes."""

from __future__ import annotations

from berth.controller.planner import FailUpdate, Promote, Transition
from berth.controller.targets import stored_states
from berth.core.states import EventType
from berth.store.endpoints import EndpointRecord

Event = tuple[EventType, str, int | None]


def transition_events(transition: Transition, record: EndpointRecord) -> list[Event]:
    if isinstance(transition, Promote):
        return [
            (
                EventType.CONFIG_UPDATED,
                f"Config version {transition.version} is ready and now serves all traffic.",
                transition.version,
            )
        ]
    if isinstance(transition, FailUpdate):
        keeps = (
            f"Config version {record.config_version} keeps serving."
            if record.config is not None
            else "No earlier config exists, so the endpoint is not serving."
        )
        return [
            (
                EventType.UPDATE_FAILED,
                f"Config version {transition.version} failed: {transition.reason} {keeps}",
                transition.version,
            )
        ]
    events: list[Event] = []
    pending = record.pending_config
    pending_version = pending.config_version if pending is not None else None
    for states, stored, version in (
        (transition.states.current, stored_states(record.config), record.config_version),
        (transition.states.pending, stored_states(record.pending_config), pending_version),
    ):
        for name, state in states.items():
            before = stored.get(name)
            if before is None or before.deployment != state.deployment:
                text = f"Served entity '{name}' is {state.deployment.value}" + (
                    f": {state.message}" if state.message else "."
                )
                events.append((EventType.ENTITY_STATE_CHANGED, text, version))
    if transition.states.ready != record.ready:
        events.append(
            (EventType.READINESS_CHANGED, f"Endpoint is {transition.states.ready.value}.", None)
        )
    return events
