"""Readable events for the endpoint changes the controller makes, and for what its replicas
do on their own: leave routing (a failed health check, an exit) and come back."""

from __future__ import annotations

from collections.abc import Iterable

from berth.backends.base import ReplicaState, ReplicaStatus
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


class ReplicaHealth:
    """Each replica's last observed status, so a pass can tell what changed since the last.

    A replica that served and stops being ready left routing (its message says why: a health
    probe's verdict, an exit and restart); one that served before and is ready again is back.
    A replica's first start is its entity's state change, and a replica the controller stops
    disappears without an event: both are the controller's own doing, recorded already."""

    def __init__(self) -> None:
        self._last: dict[str, ReplicaStatus] = {}
        self._served: set[str] = set()
        """Replicas seen READY at least once."""

    def events(self, observed: Iterable[ReplicaStatus]) -> list[tuple[str, Event]]:
        """The events of the replicas' changes since the last call, each with its endpoint."""
        found: list[tuple[str, Event]] = []
        now = {status.replica_id: status for status in observed}
        for rid, status in now.items():
            text = self._change(self._last.get(rid), status)
            if text is not None:
                who = f"Replica {rid} of served entity '{status.spec.served_entity}'"
                found.append(
                    (
                        status.spec.endpoint,
                        (EventType.REPLICA_HEALTH_CHANGED, f"{who} {text}", None),
                    )
                )
            if status.state == ReplicaState.READY:
                self._served.add(rid)
        self._last = now
        self._served &= set(now)
        return found

    def _change(self, before: ReplicaStatus | None, now: ReplicaStatus) -> str | None:
        if now.state == ReplicaState.STOPPING:  # the controller's own doing
            return None
        ready = now.state == ReplicaState.READY
        if before is None or ready == (before.state == ReplicaState.READY):
            if before is not None and now.restarts > before.restarts and ready:
                return "restarted and is back in routing."  # between two passes
            return None
        if not ready:
            return f"left routing: {now.message or now.state.value}."
        return "is back in routing." if now.replica_id in self._served else None
