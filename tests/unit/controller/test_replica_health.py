"""Replicas' own transitions as endpoint events: leaving routing and coming back, without
events for what the controller does itself (first starts, stops)."""

from __future__ import annotations

from dataclasses import replace

from berth.backends.base import ReplicaSpec, ReplicaState, ReplicaStatus
from berth.controller.events import ReplicaHealth
from berth.core.states import EventType

SPEC = ReplicaSpec("ep", "m-1", "/a", "container", "python", 4)
READY = ReplicaStatus("ep.m-1.f.0", SPEC, ReplicaState.READY, address="unix:/r.sock")
STARTING = ReplicaStatus("ep.m-1.f.0", SPEC, ReplicaState.STARTING)


def texts(health: ReplicaHealth, *observed: ReplicaStatus) -> list[str]:
    found = health.events(observed)
    assert all(ep == "ep" and e[0] is EventType.REPLICA_HEALTH_CHANGED for ep, e in found)
    return [event[1] for _, event in found]


def test_a_replica_that_fails_its_health_probe_leaves_routing_and_comes_back() -> None:
    health = ReplicaHealth()
    assert texts(health, STARTING) == []
    assert texts(health, READY) == []  # its first start is the entity's state change
    sick = replace(STARTING, message="unhealthy: HTTP 500")
    assert texts(health, sick) == [
        "Replica ep.m-1.f.0 of served entity 'm-1' left routing: unhealthy: HTTP 500."
    ]
    assert texts(health, sick) == []
    assert texts(health, READY) == ["Replica ep.m-1.f.0 of served entity 'm-1' is back in routing."]


def test_a_restart_between_two_passes_is_still_told() -> None:
    health = ReplicaHealth()
    texts(health, READY)
    assert texts(health, replace(READY, restarts=1)) == [
        "Replica ep.m-1.f.0 of served entity 'm-1' restarted and is back in routing."
    ]


def test_stops_and_replicas_that_never_served_make_no_event() -> None:
    health = ReplicaHealth()
    texts(health, READY)
    assert texts(health, replace(READY, state=ReplicaState.STOPPING)) == []
    assert texts(health) == []
    assert texts(health, STARTING) == []
    assert texts(health, replace(STARTING, state=ReplicaState.FAILED)) == []
    assert texts(health, READY) == []  # a replica of the same id, new: never served before
