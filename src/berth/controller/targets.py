"""Desired state: what each endpoint's current and pending configs ask to run."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from berth.backends.base import ReplicaSpec
from berth.core.container_contract import Deployment, replica_json
from berth.core.dataplane import (
    CALIBRATED_FORMATS,
    ENGINE_FORMATS,
    TASK_FORMATS,
    ProvisionedBand,
    RoutePolicy,
)
from berth.core.endpoint_config import EndpointConfigDoc, EntityState, ServedEntity
from berth.core.errors import BerthError
from berth.core.gpus import gpus_for
from berth.core.sizing import REPLICA_CONCURRENCY, replica_bounds
from berth.core.states import ConfigUpdate, DeploymentState, EndpointReady
from berth.core.throughput import LLM_SLOTS, asks_throughput, provisioned_band
from berth.store.endpoints import EndpointRecord

DEFAULT_BATCH_WAIT_MS = 5.0
MIB = 1024 * 1024


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
    provisioned: ProvisionedBand | None = None
    """An open LLM served with provisioned throughput: its band, in chunks of this host."""

    def replica_ids(self) -> tuple[str, ...]:
        if self.spec is None:
            return ()
        return self.spec.replica_ids(self.replicas)


@dataclass(frozen=True, slots=True)
class ConfigTarget:
    version: int
    entities: tuple[EntityTarget, ...]


@dataclass(frozen=True, slots=True)
class EndpointStates:
    ready: EndpointReady
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
    policy: RoutePolicy = RoutePolicy()


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    path: str
    model_format: str
    environment: Mapping[str, Any]
    """What registration recorded: ``{"hash": None}`` for berth's own environment."""
    task: str | None = None
    """An LLM's task: an open LLM's as registration read it from the weights, a custom
    container's as registered."""
    container_spec: Mapping[str, Any] | None = None
    """A custom container version's normalised spec."""
    storage_uri: str | None = None
    """A container's ``AIP_STORAGE_URI``: its artifact's ``file://`` URI, when it has one."""
    weights_bytes: int = 0
    """An open LLM's weights, as registration measured them (0 for other formats)."""


@dataclass(frozen=True, slots=True)
class Runtime:
    """Where a model version's replicas run, or why they cannot start yet."""

    python: str | None
    pythonpath: str | None = None
    blocked: EntityState | None = None


def on_nodes(environment: Mapping[str, Any]) -> Runtime:
    """The runtime of a version whose replicas run on machines that build its environment
    themselves (the ray backend's nodes): no path of this server, only the environment's name
    (its hash, ``berth`` for berth's own), so that every server gives the replicas the same
    spec, and so the same ids, wherever its ``BERTH_HOME`` lies."""
    return Runtime(f"node:{environment.get('hash') or 'berth'}")


ArtifactLookup = Callable[[str, str], ArtifactRef]
RuntimeLookup = Callable[[ArtifactRef], Runtime]
ExternalResolver = Callable[[Mapping[str, Any]], Mapping[str, Any]]
ChunkLookup = Callable[[str, str], int | EntityState]
"""(model, version) → the throughput chunk of an open LLM's version on this host, or the
state to show while it is being measured (or why it cannot be)."""


def route_policy(record: EndpointRecord, queriers: frozenset[str]) -> RoutePolicy:
    """What the gateway enforces for the endpoint: ``queriers`` (who holds CAN_QUERY), then
    its AI gateway, rate limits and log settings."""
    ai_gateway = record.ai_gateway or {}
    logs = record.log_config or {}
    return RoutePolicy(
        fallback=_enabled(ai_gateway, "fallback_config"),
        queriers=queriers,
        track_usage=_enabled(ai_gateway, "usage_tracking_config"),
        rate_limits=(*(record.rate_limits or ()), *(ai_gateway.get("rate_limits") or ())),
        capture=_capture(record),
        access_log=bool(logs.get("access_log")),
        predict_log=bool(logs.get("predict_log")),
        guardrails=ai_gateway.get("guardrails") or None,
    )


def _capture(record: EndpointRecord) -> float:
    """The sampling fraction of the endpoint's inference table: the AI gateway's
    ``inference_table_config`` or the legacy ``auto_capture_config``; 0 when neither is on."""
    for block in (
        (record.ai_gateway or {}).get("inference_table_config"),
        record.config.auto_capture_config if record.config is not None else None,
    ):
        if isinstance(block, Mapping) and block.get("enabled"):
            return float(block.get("sampling_fraction") or 1.0)
    return 0.0


def _enabled(ai_gateway: Mapping[str, Any], block: str) -> bool:
    """Whether the AI gateway config turns ``block`` (``{"enabled": bool}``) on."""
    return bool((ai_gateway.get(block) or {}).get("enabled"))


def scaling(entity: ServedEntity, chunk_tps: int | None = None) -> Scaling:
    """One replica per ``REPLICA_CONCURRENCY`` of the concurrency range the entity asks for
    (``min/max_provisioned_concurrency`` or its ``workload_size``), the lower bound 0 with
    scale to zero; or, for an open LLM with provisioned throughput, one replica per chunk
    (``chunk_tps``) of its band, the lower bound 0 with a minimum of 0 tokens/s."""
    fewest, most = replica_bounds(entity, chunk_tps)
    idle = entity.scale_to_zero_idle_seconds
    return Scaling(
        min_replicas=fewest,
        max_replicas=most,
        idle_s=float(idle) if entity.scale_to_zero_enabled and idle is not None else None,
    )


def replica_concurrency(batch_size: int) -> int:
    """Requests the gateway sends one replica at once: with batching, enough to fill one
    batch while the previous one is scored."""
    return REPLICA_CONCURRENCY if batch_size < 2 else max(REPLICA_CONCURRENCY, 2 * batch_size)


def config_target(
    endpoint: str,
    endpoint_id: str,
    document: EndpointConfigDoc,
    artifacts: ArtifactLookup,
    runtimes: RuntimeLookup,
    externals: ExternalResolver,
    chunks: ChunkLookup,
) -> ConfigTarget:
    entities = []
    for entity in document.served_entities:
        spec, blocked, external, chunk = None, None, None, None
        if entity.external_model is not None:
            try:
                external = externals(entity.external_model.to_json())
            except BerthError as exc:  # e.g. a secret it references is missing
                blocked = EntityState(DeploymentState.FAILED, exc.message)
        elif (served := entity.registered_model) is not None:
            artifact = artifacts(*served)
            deployment = Deployment(endpoint_id, entity.name, served[0], artifact.storage_uri)
            spec, blocked = _replica_spec(endpoint, entity, artifact, runtimes, deployment)
            if asks_throughput(entity) and artifact.model_format in CALIBRATED_FORMATS:
                measured = chunks(*served)
                if isinstance(measured, EntityState):
                    spec, blocked = None, blocked or measured
                else:
                    chunk = measured
        bounds = scaling(entity, chunk)
        entities.append(
            EntityTarget(
                name=entity.name,
                traffic=document.traffic(entity.name),
                spec=spec,
                replicas=bounds.initial if spec else 0,
                scaling=bounds,
                blocked=blocked,
                external=external,
                provisioned=provisioned_band(entity, chunk) if chunk else None,
            )
        )
    return ConfigTarget(version=document.config_version, entities=tuple(entities))


def _replica_spec(
    endpoint: str,
    entity: ServedEntity,
    artifact: ArtifactRef,
    runtimes: RuntimeLookup,
    deployment: Deployment,
) -> tuple[ReplicaSpec | None, EntityState | None]:
    """The spec of a registered model's replicas, or why they cannot start yet; a container's
    replicas are told its spec and where it is deployed (``deployment``)."""
    runtime = runtimes(artifact)
    if runtime.python is None:
        return None, runtime.blocked
    batch = entity.max_batch_size or 1
    spec = ReplicaSpec(
        endpoint=endpoint,
        served_entity=entity.name,
        artifact=artifact.path,
        model_format=artifact.model_format,
        python=runtime.python,
        pythonpath=runtime.pythonpath,
        max_concurrency=(
            LLM_SLOTS if artifact.model_format in ENGINE_FORMATS else replica_concurrency(batch)
        ),
        env=tuple(sorted((entity.environment_vars or {}).items())),
        max_batch_size=batch,
        max_batch_wait_ms=_batch_wait(entity) if batch > 1 else 0.0,
        gpus=gpus_for(entity.workload_type),
        task=artifact.task if artifact.model_format in TASK_FORMATS else None,
        container=(
            replica_json(artifact.container_spec, deployment)
            if artifact.container_spec is not None
            else None
        ),
        environment=_environment(artifact),
        memory_mb=-(-artifact.weights_bytes // MIB),
    )
    return spec, runtime.blocked


def _environment(artifact: ArtifactRef) -> str | None:
    """The version's environment spec, for backends that build it where replicas run."""
    spec = artifact.environment.get("spec")
    return None if spec is None else json.dumps(spec, sort_keys=True)


def _batch_wait(entity: ServedEntity) -> float:
    wait = entity.max_batch_wait_ms
    return DEFAULT_BATCH_WAIT_MS if wait is None else float(wait)


def in_progress(config_update: str) -> bool:
    return config_update == ConfigUpdate.IN_PROGRESS.value


def stored_states(document: EndpointConfigDoc | None) -> dict[str, EntityState]:
    """The per-entity states recorded in a config document (none without one)."""
    return {} if document is None else document.states()
