"""Desired state: what each endpoint's current and pending configs ask to run."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from berth.backends.base import ReplicaSpec
from berth.core.errors import BerthError
from berth.core.states import ConfigUpdate, DeploymentState

REPLICA_CONCURRENCY = 4
"""Concurrent requests one replica takes: Databricks' Small size is one such replica."""

WORKLOAD_CONCURRENCY = {"Small": 4, "Medium": 16, "Large": 64}

EntityState = tuple[str, str]
"""(``deployment`` state, ``deployment_state_message``) of one served entity."""


@dataclass(frozen=True, slots=True)
class EntityTarget:
    name: str
    traffic: int
    spec: ReplicaSpec | None
    """None for an external model (it needs no replica) or while ``blocked``."""
    replicas: int
    blocked: EntityState | None = None
    """The state to show while replicas cannot start yet (an environment being built)."""
    external: Mapping[str, Any] | None = None
    """An external model's block with its credentials resolved."""

    def replica_ids(self) -> tuple[str, ...]:
        if self.spec is None:
            return ()
        return tuple(self.spec.replica_id(i) for i in range(self.replicas))


@dataclass(frozen=True, slots=True)
class ConfigTarget:
    version: int
    entities: tuple[EntityTarget, ...]


@dataclass(frozen=True, slots=True)
class EndpointStates:
    ready: str
    current: Mapping[str, EntityState]
    pending: Mapping[str, EntityState]


@dataclass(frozen=True, slots=True)
class EndpointTarget:
    endpoint_id: str
    name: str
    current: ConfigTarget | None
    pending: ConfigTarget | None
    """Set only while an update is in progress."""
    states: EndpointStates
    """As stored, so that only changes are written."""
    fallback: bool = False
    queriers: frozenset[str] = frozenset()
    track_usage: bool = False
    rate_limits: tuple[Mapping[str, Any], ...] = ()
    capture: float = 0.0
    access_log: bool = False
    predict_log: bool = False


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    path: str
    model_format: str
    environment: Mapping[str, Any]
    """What registration recorded: ``{"hash": None}`` for berth's own environment."""


@dataclass(frozen=True, slots=True)
class Runtime:
    """Where a model version's replicas run, or why they cannot start yet."""

    python: str | None
    pythonpath: str | None = None
    blocked: EntityState | None = None


ArtifactLookup = Callable[[str, str], ArtifactRef]
RuntimeLookup = Callable[[ArtifactRef], Runtime]
ExternalResolver = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def replica_count(entity: Mapping[str, Any]) -> int:
    """One replica per ``REPLICA_CONCURRENCY`` of the concurrency the entity asks for."""
    concurrency = entity.get("max_provisioned_concurrency") or WORKLOAD_CONCURRENCY.get(
        entity.get("workload_size") or "Small", REPLICA_CONCURRENCY
    )
    return max(1, math.ceil(concurrency / REPLICA_CONCURRENCY))


def config_target(
    endpoint: str,
    document: Mapping[str, Any],
    artifacts: ArtifactLookup,
    runtimes: RuntimeLookup,
    externals: ExternalResolver,
) -> ConfigTarget:
    routes = {
        r.get("served_entity_name") or r.get("served_model_name"): int(r["traffic_percentage"])
        for r in document.get("traffic_config", {}).get("routes", [])
    }
    entities = []
    for entity in document.get("served_entities", []):
        spec, blocked, external = None, None, None
        if entity.get("external_model") is not None:
            try:
                external = externals(entity["external_model"])
            except BerthError as exc:  # e.g. a secret it references is missing
                blocked = (DeploymentState.FAILED.value, exc.message)
        else:
            artifact = artifacts(entity["entity_name"], str(entity["entity_version"]))
            runtime = runtimes(artifact)
            blocked = runtime.blocked
            if runtime.python is not None:
                spec = ReplicaSpec(
                    endpoint=endpoint,
                    served_entity=entity["name"],
                    artifact=artifact.path,
                    model_format=artifact.model_format,
                    python=runtime.python,
                    pythonpath=runtime.pythonpath,
                    max_concurrency=REPLICA_CONCURRENCY,
                    env=tuple(sorted((entity.get("environment_vars") or {}).items())),
                )
        entities.append(
            EntityTarget(
                name=entity["name"],
                traffic=routes.get(entity["name"], 0),
                spec=spec,
                replicas=replica_count(entity) if spec else 0,
                blocked=blocked,
                external=external,
            )
        )
    return ConfigTarget(version=int(document["config_version"]), entities=tuple(entities))


def in_progress(config_update: str) -> bool:
    return config_update == ConfigUpdate.IN_PROGRESS.value


def stored_states(document: Mapping[str, Any] | None) -> dict[str, EntityState]:
    """The per-entity states recorded in a config document."""
    states: dict[str, EntityState] = {}
    for entity in (document or {}).get("served_entities", []):
        state = entity.get("state") or {}
        states[entity["name"]] = (
            state.get("deployment", ""),
            state.get("deployment_state_message", ""),
        )
    return states
