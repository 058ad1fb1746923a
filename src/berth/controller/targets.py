"""Desired state: what each endpoint's current and pending configs ask to run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from berth.backends.base import ReplicaSpec
from berth.core.errors import BerthError
from berth.core.sizing import REPLICA_CONCURRENCY, replica_bounds
from berth.core.states import ConfigUpdate, DeploymentState

DEFAULT_BATCH_WAIT_MS = 5.0

EntityState = tuple[str, str]
"""(``deployment`` state, ``deployment_state_message``) of one served entity."""


@dataclass(frozen=True, slots=True)
class Scaling:
    """The bounds the autoscaler keeps a served entity's replica count within."""

    min_replicas: int
    """0 with scale to zero."""
    max_replicas: int
    idle_s: float | None = None
    """With scale to zero: this entity's own idle time before its last replica stops."""

    @property
    def initial(self) -> int:
        """Replicas a new entity starts with: one at least, so that it becomes ready."""
        return max(self.min_replicas, 1)


@dataclass(frozen=True, slots=True)
class EntityTarget:
    name: str
    traffic: int
    spec: ReplicaSpec | None
    """None for an external model (it needs no replica) or while ``blocked``."""
    replicas: int
    """How many run: the autoscaler's choice within ``scaling``."""
    scaling: Scaling = Scaling(1, 1)
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
    guardrails: Mapping[str, Any] | None = None


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


def scaling(entity: Mapping[str, Any]) -> Scaling:
    """One replica per ``REPLICA_CONCURRENCY`` of the concurrency range the entity asks for
    (``min/max_provisioned_concurrency`` or its ``workload_size``); the lower bound is 0 with
    scale to zero."""
    fewest, most = replica_bounds(entity)
    to_zero = bool(entity.get("scale_to_zero_enabled"))
    idle = entity.get("scale_to_zero_idle_seconds")
    return Scaling(
        min_replicas=fewest,
        max_replicas=most,
        idle_s=float(idle) if to_zero and idle is not None else None,
    )


def replica_concurrency(batch_size: int) -> int:
    """Requests the gateway sends one replica at once: with batching, enough to fill one
    batch while the previous one is scored."""
    return REPLICA_CONCURRENCY if batch_size < 2 else max(REPLICA_CONCURRENCY, 2 * batch_size)


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
                batch = int(entity.get("max_batch_size") or 1)
                spec = ReplicaSpec(
                    endpoint=endpoint,
                    served_entity=entity["name"],
                    artifact=artifact.path,
                    model_format=artifact.model_format,
                    python=runtime.python,
                    pythonpath=runtime.pythonpath,
                    max_concurrency=replica_concurrency(batch),
                    env=tuple(sorted((entity.get("environment_vars") or {}).items())),
                    max_batch_size=batch,
                    max_batch_wait_ms=_batch_wait(entity) if batch > 1 else 0.0,
                )
        bounds = scaling(entity)
        entities.append(
            EntityTarget(
                name=entity["name"],
                traffic=routes.get(entity["name"], 0),
                spec=spec,
                replicas=bounds.initial if spec else 0,
                scaling=bounds,
                blocked=blocked,
                external=external,
            )
        )
    return ConfigTarget(version=int(document["config_version"]), entities=tuple(entities))


def _batch_wait(entity: Mapping[str, Any]) -> float:
    wait = entity.get("max_batch_wait_ms")
    return DEFAULT_BATCH_WAIT_MS if wait is None else float(wait)


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
