"""``plan(targets, replicas)``: what to start, stop, record and route. Pure, so it is tested
without processes.

Rollout rule: a pending config's replicas start beside the current ones; the config is promoted
only when every replica of every pending entity is ready, and routes switch in that same
step; replicas nobody wants any more are stopped after the switch (the next pass), once the
gateway has drained them. A pending replica that fails fails the update and leaves the
current config serving.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from berth.backends.base import ReplicaSpec, ReplicaState, ReplicaStatus
from berth.controller.targets import ConfigTarget, EndpointStates, EndpointTarget, EntityTarget
from berth.core.container_contract import effective_routes, read_replica_json
from berth.core.dataplane import (
    ContainerRoute,
    EndpointRoute,
    EntityRoute,
    ReplicaProtocol,
    ReplicaRoute,
    replica_protocol,
)
from berth.core.endpoint_config import EntityState
from berth.core.states import DeploymentState, EndpointReady

PIPELINE = 2
"""Requests the gateway lets wait inside a replica per slot it has: the next one is there when
a slot frees, instead of a round trip through the gateway later (the replica queues them in
order, and health never waits behind them)."""
SCALED_TO_ZERO = "Scaled to zero: the next request starts a replica."
WAKING = "Scaling up from zero: a replica is starting for waiting requests."
READY, FAILED = DeploymentState.READY, DeploymentState.FAILED


@dataclass(frozen=True, slots=True)
class Promote:
    endpoint_id: str
    version: int
    states: EndpointStates


@dataclass(frozen=True, slots=True)
class FailUpdate:
    endpoint_id: str
    version: int
    reason: str
    states: EndpointStates


@dataclass(frozen=True, slots=True)
class SaveStates:
    endpoint_id: str
    states: EndpointStates


Transition = Promote | FailUpdate | SaveStates


@dataclass(frozen=True, slots=True)
class Plan:
    start: tuple[tuple[str, ReplicaSpec], ...] = ()
    stop: tuple[str, ...] = ()
    transitions: tuple[Transition, ...] = ()
    routes: Mapping[str, EndpointRoute] = field(default_factory=dict)


def plan(targets: Sequence[EndpointTarget], replicas: Iterable[ReplicaStatus]) -> Plan:
    observed = {r.replica_id: r for r in replicas}
    wanted: dict[str, ReplicaSpec] = {}
    transitions: list[Transition] = []
    routes: dict[str, EndpointRoute] = {}
    for target in targets:
        for config in (target.current, target.pending):
            for entity in config.entities if config else ():
                wanted.update((rid, entity.spec) for rid in entity.replica_ids() if entity.spec)
        transition, serving = _decide(target, observed)
        if transition is not None:
            transitions.append(transition)
        routes[target.name] = _route(target, serving, observed)
    return Plan(
        start=tuple((rid, spec) for rid, spec in wanted.items() if rid not in observed),
        stop=tuple(rid for rid in observed if rid not in wanted),
        transitions=tuple(transitions),
        routes=routes,
    )


def _decide(
    target: EndpointTarget, observed: Mapping[str, ReplicaStatus]
) -> tuple[Transition | None, ConfigTarget | None]:
    """The endpoint's transition, if any, and the config that serves after it."""
    current = _entity_states(target.current, observed, gate=False)
    pending = _entity_states(target.pending, observed, gate=True)
    if target.pending is not None:
        failed = [(n, s.message) for n, s in pending.items() if s.deployment == FAILED]
        if failed:
            name, message = failed[0]
            reason = f"Served entity '{name}' failed: {message}"
            states = EndpointStates(_ready(current, target.current), current, pending)
            return FailUpdate(target.endpoint_id, target.pending.version, reason, states), (
                target.current
            )
        if all(s.deployment == READY for s in pending.values()):
            promoted = _entity_states(target.pending, observed, gate=False)
            states = EndpointStates(EndpointReady.READY, promoted, {})
            return Promote(target.endpoint_id, target.pending.version, states), target.pending
    states = EndpointStates(_ready(current, target.current), current, pending)
    if states != target.states:
        return SaveStates(target.endpoint_id, states), target.current
    return None, target.current


def _ready(states: Mapping[str, EntityState], config: ConfigTarget | None) -> EndpointReady:
    if config is None or any(s.deployment != READY for s in states.values()):
        return EndpointReady.NOT_READY
    return EndpointReady.READY


def _entity_states(
    config: ConfigTarget | None, observed: Mapping[str, ReplicaStatus], *, gate: bool
) -> dict[str, EntityState]:
    """Per entity: ready once one replica is (all of them when ``gate``, before a swap)."""
    if config is None:
        return {}
    return {e.name: _entity_state(e, observed, gate) for e in config.entities}


def _entity_state(
    entity: EntityTarget, observed: Mapping[str, ReplicaStatus], gate: bool
) -> EntityState:
    if entity.blocked is not None:
        return entity.blocked
    if entity.spec is None:
        return EntityState(READY)
    if entity.replicas == 0:
        return EntityState(READY, SCALED_TO_ZERO)
    statuses = [observed[rid] for rid in entity.replica_ids() if rid in observed]
    ready = sum(s.state == ReplicaState.READY for s in statuses)
    failed = [s for s in statuses if s.state == ReplicaState.FAILED]
    if ready >= (entity.replicas if gate else 1):
        return EntityState(READY, f"{ready}/{entity.replicas} replicas ready.")
    if failed:
        return EntityState(FAILED, failed[0].message)
    if not gate and entity.scaling.min_replicas == 0:
        return EntityState(READY, WAKING)
    return EntityState(
        DeploymentState.CREATING,
        f"Starting replicas: {ready}/{entity.replicas} ready, loading the model.",
    )


def _route(
    target: EndpointTarget, serving: ConfigTarget | None, observed: Mapping[str, ReplicaStatus]
) -> EndpointRoute:
    entities: tuple[EntityRoute, ...] = ()
    if serving is not None:
        entities = tuple(_entity_route(e, observed) for e in serving.entities)
    version = serving.version if serving is not None else 0
    return EndpointRoute(target.name, target.endpoint_id, version, entities, target.policy)


def _entity_route(entity: EntityTarget, observed: Mapping[str, ReplicaStatus]) -> EntityRoute:
    protocol = ReplicaProtocol.RUNTIME
    container = None
    if entity.spec is not None:
        protocol = replica_protocol(entity.spec.model_format, entity.spec.task)
        if entity.spec.container is not None:
            routes = effective_routes(*read_replica_json(entity.spec.container))
            container = ContainerRoute(routes.predict, routes.raw_invoke)
    # The runtime takes a second request per slot, so one is ready when a slot frees; an
    # engine gets only as many as it decodes at once, so the rest wait where berth sees them.
    pipeline = PIPELINE if protocol is ReplicaProtocol.RUNTIME else 1
    replicas = tuple(
        ReplicaRoute(rid, status.address, status.spec.max_concurrency * pipeline)
        for rid in entity.replica_ids()
        if (status := observed.get(rid)) is not None
        and status.state == ReplicaState.READY
        and status.address is not None
    )
    starting = any(
        (status := observed.get(rid)) is not None and status.state == ReplicaState.STARTING
        for rid in entity.replica_ids()
    )
    return EntityRoute(
        name=entity.name,
        traffic_percentage=entity.traffic,
        replicas=replicas,
        external=entity.external,
        cold=entity.spec is not None
        and not replicas
        and (entity.scaling.min_replicas == 0 or starting),
        protocol=protocol,
        provisioned=entity.provisioned,
        container=container,
    )
