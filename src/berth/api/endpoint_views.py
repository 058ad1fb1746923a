"""Stored endpoints rendered as Databricks' ServingEndpointDetailed and ServingEndpoint JSON.

Plaintext provider secrets are stored for the gateway but never leave through these views.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from berth.api.external_model_rules import PLAINTEXT_SUFFIX
from berth.core.endpoint_config import EndpointConfigDoc, ServedEntity, TrafficRoute, entities_of
from berth.core.throughput import Calibration, provisioned_band
from berth.store.endpoints import EndpointRecord, EventRecord

Json = dict[str, Any]

_UNECHOED = frozenset({"burst_scaling_enabled"})
_SERVED_MODEL_KEYS = (
    "name",
    "model_name",
    "model_version",
    "workload_size",
    "workload_type",
    "scale_to_zero_enabled",
    "min_provisioned_concurrency",
    "max_provisioned_concurrency",
    "provisioned_model_units",
    "environment_vars",
    "instance_profile_arn",
    "creator",
    "creation_timestamp",
    "state",
)


Scale = Mapping[tuple[int, str], tuple[int, int]]
"""(config version, served entity) → (replicas ready, replicas the autoscaler wants)."""
Chunks = Mapping[tuple[str, str], Calibration]
"""(model, version) → its throughput chunk as calibrated on this host."""


def detailed(
    record: EndpointRecord,
    permission_level: str,
    scale: Scale | None = None,
    chunks: Chunks | None = None,
) -> Json:
    """The answer of GET, create and config updates; ``permission_level`` is the caller's.

    With ``scale``, each served entity that runs replicas shows berth's ``current_replicas``
    (ready) and ``desired_replicas`` (the autoscaler's target). With ``chunks``, each entity
    sized in throughput shows berth's ``provisioned_throughput``: the measured
    ``chunk_size`` (tokens/s of one replica, one model unit), the band it asks for in
    tokens/s (``min_throughput``, ``max_throughput``), the band its ready replicas provide
    now (``current_band``, with ``scale``) and when and where the chunk was measured.
    """
    body = _common(record)
    if record.config is not None:
        body["config"] = _config(record.config, scale or {}, chunks or {})
    if record.pending_config is not None:
        body["pending_config"] = _config(record.pending_config, scale or {}, chunks or {})
    body["permission_level"] = permission_level
    return body


def summary(record: EndpointRecord) -> Json:
    """One item of the list answer: the config reduced to what each entity serves."""
    body = _common(record)
    if record.config is not None:
        body["config"] = _config_summary(record.config)
    return body


def event(record: EventRecord) -> Json:
    return {
        "timestamp": record.timestamp,
        "type": record.event_type,
        "message": record.message,
        "config_version": record.config_version,
    }


def without_plaintext(value: Any) -> Any:
    """``value`` with every ``*_plaintext`` key removed, at any depth."""
    if isinstance(value, dict):
        return {
            key: without_plaintext(item)
            for key, item in value.items()
            if not key.endswith(PLAINTEXT_SUFFIX)
        }
    return value


def _common(record: EndpointRecord) -> Json:
    body: Json = {
        "name": record.name,
        "id": record.id,
        "creator": record.creator,
        "creation_timestamp": record.created_at,
        "last_updated_timestamp": record.updated_at,
        "state": {"ready": record.ready.value, "config_update": record.config_update.value},
        "tags": record.tags,
        "route_optimized": record.route_optimized,
    }
    optional = {
        "description": record.description or None,
        "task": (_serving_task(record.config) or record.task) if record.task else None,
        "ai_gateway": record.ai_gateway or None,
        "email_notifications": record.email_notifications,
        "budget_policy_id": record.budget_policy_id,
        "telemetry_config": record.telemetry_config,
        "log_config": record.log_config,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def _config(doc: EndpointConfigDoc, scale: Scale, chunks: Chunks) -> Json:
    out: Json = {"config_version": doc.config_version}
    if doc.start_time is not None:
        out["start_time"] = doc.start_time
    out["served_entities"] = [
        _entity(
            entity,
            scale.get((doc.config_version, entity.name)),
            chunks.get(entity.registered_model) if entity.registered_model else None,
        )
        for entity in doc.served_entities
    ]
    models = [_served_model(entity) for entity in doc.served_entities if entity.entity_name]
    if models:
        out["served_models"] = models
    out["traffic_config"] = {"routes": [_route(route) for route in doc.routes]}
    if doc.auto_capture_config is not None:
        out["auto_capture_config"] = dict(doc.auto_capture_config)
    return out


def _config_summary(doc: EndpointConfigDoc) -> Json:
    out: Json = {
        "served_entities": [
            {
                key: value
                for key, value in _entity(entity).items()
                if key in ("name", "entity_name", "entity_version", "external_model")
            }
            for entity in doc.served_entities
        ]
    }
    models = [
        {key: model[key] for key in ("name", "model_name", "model_version")}
        for model in (_served_model(e) for e in doc.served_entities if e.entity_name)
    ]
    if models:
        out["served_models"] = models
    return out


def _entity(
    entity: ServedEntity,
    replicas: tuple[int, int] | None = None,
    calibration: Calibration | None = None,
) -> Json:
    """The entity as given, less its secrets; ``replicas``: (ready, desired) when it runs any;
    ``calibration``: its version's chunk, when it is sized in throughput."""
    out = {key: value for key, value in entity.to_json().items() if key not in _UNECHOED}
    if entity.external_model is not None:
        out["external_model"] = without_plaintext(out["external_model"])
    if replicas is not None:
        out["current_replicas"], out["desired_replicas"] = replicas
    band = provisioned_band(entity, calibration.chunk_tps) if calibration else None
    if calibration is not None and band is not None:
        provisioned: Json = {
            "chunk_size": calibration.chunk_tps,
            "min_throughput": band.min_tps,
            "max_throughput": band.max_tps,
        }
        if replicas is not None:
            provisioned["current_band"] = band.current(replicas[0])
        provisioned["calibrated_at"] = calibration.calibrated_at
        provisioned["fingerprint"] = calibration.fingerprint
        out["provisioned_throughput"] = provisioned
    return out


def _served_model(entity: ServedEntity) -> Json:
    """The deprecated ``served_models`` mirror of a registered-model entity."""
    renamed = {
        **entity.to_json(),
        "model_name": entity.entity_name,
        "model_version": entity.entity_version,
    }
    return {key: renamed[key] for key in _SERVED_MODEL_KEYS if key in renamed}


def _route(route: TrafficRoute) -> Json:
    return {
        "served_entity_name": route.served_entity_name,
        "served_model_name": route.served_entity_name,
        "traffic_percentage": route.traffic_percentage,
    }


def _serving_task(config: EndpointConfigDoc | None) -> str | None:
    """The task of the external models the current config serves (it may have changed since
    the endpoint was created: an update may move it from embeddings to chat)."""
    for entity in entities_of(config):
        if entity.external_model is not None and entity.external_model.task:
            return entity.external_model.task
    return None
