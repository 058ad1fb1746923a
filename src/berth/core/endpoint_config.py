"""The endpoint config document, read once into frozen values.

The API validates a config at the edge (the pydantic schemas of ``api/schemas/endpoints.py``,
then ``api/endpoint_config.py``) and makes an ``EndpointConfigDoc``; the store keeps its JSON
(``to_json``) and reads it back (``from_json``); the controller, the API's views and checks,
and the store's own queries read the typed values, never the JSON by string keys.

Adding a served-entity field (an LLM engine's settings, a container spec): declare it on
``ServedEntityInput`` (the wire), then on ``ServedEntity`` here with its type. The reader and
writer go by ``ServedEntity``'s fields, so nothing else of the document changes; a field that
holds a nested block gets a value type with its own ``from_json``/``to_json``, named in
``_NESTED``. Then read the field where it matters (``controller/targets.py`` to reach replicas,
``api/endpoint_views.py`` if the ``served_models`` mirror shows it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from berth.core.states import DeploymentState

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class EntityState:
    """Where one served entity's deployment stands, with a message for people."""

    deployment: DeploymentState
    message: str = ""

    def to_json(self) -> Json:
        return {"deployment": self.deployment.value, "deployment_state_message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EntityState:
        return cls(DeploymentState(data["deployment"]), data.get("deployment_state_message", ""))


@dataclass(frozen=True, slots=True)
class ExternalModel:
    """A model served by an LLM provider: its id there, the provider, the task, and the
    provider's config blocks (``{"openai_config": {...}}``) as the providers read them."""

    name: str
    provider: str
    task: str
    blocks: Mapping[str, Mapping[str, Any]]

    def to_json(self) -> Json:
        return {
            "name": self.name,
            "provider": self.provider,
            "task": self.task,
            **{key: dict(block) for key, block in self.blocks.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExternalModel:
        blocks = {k: v for k, v in data.items() if k not in ("name", "provider", "task")}
        return cls(data["name"], data["provider"], data["task"], blocks)


@dataclass(frozen=True, slots=True)
class ServedEntity:
    """One served entity of a config: a registered model version (``entity_name``,
    ``entity_version``) or an ``external_model``. None is a field the config left out."""

    name: str
    entity_name: str | None = None
    entity_version: str | None = None
    external_model: ExternalModel | None = None
    workload_size: str | None = None
    workload_type: str | None = None
    scale_to_zero_enabled: bool | None = None
    min_provisioned_concurrency: int | None = None
    max_provisioned_concurrency: int | None = None
    min_provisioned_throughput: int | None = None
    max_provisioned_throughput: int | None = None
    provisioned_model_units: int | None = None
    burst_scaling_enabled: bool | None = None
    environment_vars: Mapping[str, str] | None = None
    instance_profile_arn: str | None = None
    max_batch_size: int | None = None
    """berth's extension: requests merged into one ``predict`` call."""
    max_batch_wait_ms: float | None = None
    scale_to_zero_idle_seconds: int | None = None
    creator: str | None = None
    creation_timestamp: int | None = None
    state: EntityState | None = None
    """Recorded by the controller; a new config's entities start queued."""

    @property
    def registered_model(self) -> tuple[str, str] | None:
        """(model, version) of the registered model version it serves; None for an external
        model."""
        if self.entity_name is None or self.entity_version is None:
            return None
        return self.entity_name, self.entity_version

    def to_json(self) -> Json:
        out: Json = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, EntityState | ExternalModel):
                out[field.name] = value.to_json()
            elif isinstance(value, Mapping):
                out[field.name] = dict(value)
            elif value is not None:
                out[field.name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServedEntity:
        values: Json = {}
        for field in fields(cls):
            value = data.get(field.name)
            if value is not None and field.name in _NESTED:
                value = _NESTED[field.name].from_json(value)
            values[field.name] = value
        if values["entity_version"] is not None:
            # Documents stored before versions were read as text hold numbers.
            values["entity_version"] = str(values["entity_version"])
        return cls(**values)


_NESTED: dict[str, type[EntityState] | type[ExternalModel]] = {
    "external_model": ExternalModel,
    "state": EntityState,
}


@dataclass(frozen=True, slots=True)
class TrafficRoute:
    served_entity_name: str
    traffic_percentage: int

    def to_json(self) -> Json:
        return {
            "served_entity_name": self.served_entity_name,
            "traffic_percentage": self.traffic_percentage,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrafficRoute:
        name = data.get("served_entity_name") or data["served_model_name"]
        return cls(name, int(data["traffic_percentage"]))


@dataclass(frozen=True, slots=True)
class EndpointConfigDoc:
    """One config version of an endpoint, as stored: the current one, or a pending one
    (which alone has a ``start_time``, when it was requested)."""

    config_version: int
    served_entities: tuple[ServedEntity, ...]
    routes: tuple[TrafficRoute, ...]
    auto_capture_config: Mapping[str, Any] | None = None
    """Legacy inference tables, as given."""
    start_time: int | None = None

    def entity(self, name: str) -> ServedEntity | None:
        return next((e for e in self.served_entities if e.name == name), None)

    def traffic(self, name: str) -> int:
        """The share of requests routed to the served entity ``name`` (0 if unrouted)."""
        return next((r.traffic_percentage for r in self.routes if r.served_entity_name == name), 0)

    def states(self) -> dict[str, EntityState]:
        """The per-entity states recorded in this document."""
        return {e.name: e.state for e in self.served_entities if e.state is not None}

    def with_states(self, states: Mapping[str, EntityState]) -> EndpointConfigDoc:
        """This document with ``states`` recorded on the entities they name."""
        entities = tuple(
            replace(e, state=states[e.name]) if e.name in states else e
            for e in self.served_entities
        )
        return replace(self, served_entities=entities)

    def to_json(self) -> Json:
        out: Json = {"config_version": self.config_version}
        if self.start_time is not None:
            out["start_time"] = self.start_time
        out["served_entities"] = [e.to_json() for e in self.served_entities]
        out["traffic_config"] = {"routes": [r.to_json() for r in self.routes]}
        if self.auto_capture_config is not None:
            out["auto_capture_config"] = dict(self.auto_capture_config)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EndpointConfigDoc:
        return cls(
            config_version=int(data["config_version"]),
            served_entities=tuple(ServedEntity.from_json(e) for e in data["served_entities"]),
            routes=tuple(
                TrafficRoute.from_json(r)
                for r in (data.get("traffic_config") or {}).get("routes") or ()
            ),
            auto_capture_config=data.get("auto_capture_config"),
            start_time=data.get("start_time"),
        )


def entities_of(*docs: EndpointConfigDoc | None) -> Iterable[ServedEntity]:
    """The served entities of each document given (None: an endpoint without that config)."""
    return (entity for doc in docs if doc is not None for entity in doc.served_entities)
