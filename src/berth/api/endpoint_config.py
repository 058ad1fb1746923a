"""Validates an endpoint config and normalises it to the config document the store keeps.

Pure functions: no store, no clock. Each failure is an ``InvalidParameter`` whose message says
what to fix. References to registered models are handed back for the caller to resolve.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from berth.api.external_model_rules import check_external_entity, default_name
from berth.api.schemas.endpoints import (
    EndpointCoreConfigInput,
    EndpointTag,
    ServedEntityInput,
    ServedModelInput,
    TrafficConfig,
)
from berth.core.endpoint_config import EndpointConfigDoc, EntityState, ServedEntity, TrafficRoute
from berth.core.errors import InvalidParameter
from berth.core.states import DeploymentState
from berth.core.throughput import asks_throughput

Json = dict[str, Any]

MAX_SERVED_ENTITIES = 10
QUEUED = "Queued: the controller starts its replicas shortly."
_ENDPOINT_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A served entity's registered model version, as written in the config."""

    served_name: str
    model: str
    version: str


@dataclass(frozen=True, slots=True)
class NormalisedConfig:
    """A valid config: entities with names and defaults, explicit routes, the endpoint's task.

    ``task`` is the shared task of its external models, None when it serves registered models.
    """

    served_entities: tuple[ServedEntity, ...]
    routes: tuple[TrafficRoute, ...]
    task: str | None
    auto_capture_config: Json | None

    @property
    def model_refs(self) -> list[ModelRef]:
        return [
            ModelRef(e.name, e.entity_name, e.entity_version)
            for e in self.served_entities
            if e.entity_name is not None and e.entity_version is not None
        ]

    def document(
        self, *, version: int, creator: str, now_ms: int, start_time: int | None = None
    ) -> EndpointConfigDoc:
        """The config document of this config as version ``version``, requested by ``creator``
        (``start_time``: when, for a pending document)."""
        queued = EntityState(DeploymentState.CREATING, QUEUED)
        entities = tuple(
            replace(e, creator=creator, creation_timestamp=now_ms, state=queued)
            for e in self.served_entities
        )
        return EndpointConfigDoc(
            config_version=version,
            served_entities=entities,
            routes=self.routes,
            auto_capture_config=self.auto_capture_config,
            start_time=start_time,
        )


def check_endpoint_name(name: str) -> str:
    if not _ENDPOINT_NAME.fullmatch(name):
        raise InvalidParameter(
            f"Invalid endpoint name {name!r}: use 1 to 63 characters among letters, digits, "
            "'-' and '_'."
        )
    return name


def normalise_config(config: EndpointCoreConfigInput) -> NormalisedConfig:
    inputs = _entity_inputs(config)
    docs = [_entity_doc(_label(entity, i), entity) for i, entity in enumerate(inputs)]
    names = [doc.name for doc in docs]
    _check_unique(names)
    capture = config.auto_capture_config
    return NormalisedConfig(
        served_entities=tuple(docs),
        routes=tuple(_routes(config.traffic_config, names)),
        task=_shared_task(inputs),
        auto_capture_config=None if capture is None else capture.model_dump(exclude_none=True),
    )


def check_update(endpoint: str, current_task: str | None, new: NormalisedConfig) -> None:
    """External models cannot be added to or removed from an endpoint. Their task may change
    (embeddings to chat, as Databricks' own example does): a config update replaces every
    served entity, so the new config is whole and agrees on one task."""
    if (current_task is None) != (new.task is None):
        kind = "registered models" if current_task is None else "external models"
        raise InvalidParameter(
            f"Endpoint '{endpoint}' serves {kind}: external models cannot be added to or "
            "removed from an existing endpoint; create a new endpoint instead."
        )


def merge_tags(
    current: Sequence[Json], add: Sequence[EndpointTag], delete: Sequence[str]
) -> list[Json]:
    """``current`` with ``add`` set (a later value for a key wins) and ``delete`` removed."""
    both = sorted({tag.key for tag in add} & set(delete))
    if both:
        raise InvalidParameter(
            f"Tags {', '.join(both)} are both added and deleted; give each key in one list only."
        )
    tags = {str(tag["key"]): tag for tag in current}
    for tag in add:
        tags[tag.key] = tag.model_dump(exclude_none=True)
    return [tag for key, tag in tags.items() if key not in delete]


def _entity_inputs(config: EndpointCoreConfigInput) -> list[ServedEntityInput]:
    if config.served_entities and config.served_models:
        raise InvalidParameter(
            "config has both served_entities and served_models; give served_entities only "
            "(served_models is deprecated)."
        )
    entities = list(config.served_entities or []) or [
        _from_served_model(model) for model in config.served_models or []
    ]
    if not entities:
        raise InvalidParameter(
            "config has no served entities: give at least one in served_entities."
        )
    if len(entities) > MAX_SERVED_ENTITIES:
        raise InvalidParameter(
            f"config has {len(entities)} served entities; an endpoint serves at most "
            f"{MAX_SERVED_ENTITIES}."
        )
    return entities


def _from_served_model(model: ServedModelInput) -> ServedEntityInput:
    fields = model.model_dump(exclude_none=True)
    fields["entity_name"] = fields.pop("model_name")
    fields["entity_version"] = fields.pop("model_version")
    return ServedEntityInput.model_validate(fields)


def _label(entity: ServedEntityInput, index: int) -> str:
    return f"served entity '{entity.name}'" if entity.name else f"served_entities[{index}]"


def _entity_doc(label: str, entity: ServedEntityInput) -> ServedEntity:
    given = entity.model_dump(exclude_none=True, exclude={"name"})
    if entity.external_model is not None:
        check_external_entity(label, entity, entity.external_model)
        return ServedEntity.from_json(
            {"name": entity.name or default_name(entity.external_model), **given}
        )
    _check_model_entity(label, entity)
    doc: Json = {"name": entity.name or f"{entity.entity_name}-{entity.entity_version}", **given}
    if entity.min_provisioned_concurrency is None and not asks_throughput(entity):
        doc.setdefault("workload_size", "Small")
    doc.setdefault("workload_type", "CPU")
    doc.setdefault("scale_to_zero_enabled", False)
    return ServedEntity.from_json(doc)


def _check_model_entity(label: str, entity: ServedEntityInput) -> None:
    if entity.entity_name is None:
        raise InvalidParameter(
            f"{label}: give entity_name and entity_version (a registered model version) "
            "or external_model."
        )
    if entity.entity_version is None:
        raise InvalidParameter(f"{label}: entity_version is required with entity_name.")
    _check_concurrency(label, entity)
    _check_berth_fields(label, entity)
    _check_throughput(label, entity)


def _check_concurrency(label: str, entity: ServedEntityInput) -> None:
    low, high = entity.min_provisioned_concurrency, entity.max_provisioned_concurrency
    if low is None and high is None:
        return
    if entity.workload_size is not None:
        raise InvalidParameter(
            f"{label}: workload_size and min/max_provisioned_concurrency exclude each other; "
            "give one of them."
        )
    if low is None or high is None:
        raise InvalidParameter(
            f"{label}: give both min_provisioned_concurrency and max_provisioned_concurrency."
        )
    _check_order(label, "provisioned_concurrency", low, high)


def _check_throughput(label: str, entity: ServedEntityInput) -> None:
    """Provisioned throughput, in tokens/s or in model units, as far as it can be checked
    without the version's chunk (``api/provisioned.py`` checks the rest)."""
    if not asks_throughput(entity):
        return
    if entity.workload_size is not None or entity.max_provisioned_concurrency is not None:
        raise InvalidParameter(
            f"{label}: provisioned throughput (min/max_provisioned_throughput or "
            "provisioned_model_units) and workload_size or provisioned concurrency exclude "
            "each other; give one of them."
        )
    low, high = entity.min_provisioned_throughput, entity.max_provisioned_throughput
    if entity.provisioned_model_units is not None:
        _check_model_units(label, entity, given_tps=low is not None or high is not None)
        return
    if low is None or high is None:
        raise InvalidParameter(
            f"{label}: give both min_provisioned_throughput and max_provisioned_throughput "
            "(tokens/s)."
        )
    _check_order(label, "provisioned_throughput", low, high)
    if high == 0:
        raise InvalidParameter(
            f"{label}: max_provisioned_throughput is 0; give at least one throughput chunk "
            "(get-model-optimization-info tells the model version's)."
        )
    if entity.scale_to_zero_enabled and low > 0:
        raise InvalidParameter(
            f"{label}: scale_to_zero_enabled needs min_provisioned_throughput 0 (it is "
            f"{low}); set the minimum to 0 or scale_to_zero_enabled to false."
        )


def _check_model_units(label: str, entity: ServedEntityInput, *, given_tps: bool) -> None:
    if given_tps:
        raise InvalidParameter(
            f"{label}: provisioned_model_units and min/max_provisioned_throughput exclude "
            "each other; give one of them."
        )
    if not entity.provisioned_model_units:
        raise InvalidParameter(
            f"{label}: provisioned_model_units must be 1 or more; to scale to zero, size the "
            "entity in tokens/s with min_provisioned_throughput 0 instead."
        )
    if entity.scale_to_zero_enabled:
        raise InvalidParameter(
            f"{label}: provisioned_model_units is a capacity that never scales to zero; set "
            "scale_to_zero_enabled to false, or size the entity in tokens/s with "
            "min_provisioned_throughput 0."
        )


def _check_berth_fields(label: str, entity: ServedEntityInput) -> None:
    """berth's batching and scale-to-zero fields only make sense with what they tune."""
    if entity.max_batch_wait_ms is not None and (entity.max_batch_size or 1) < 2:
        raise InvalidParameter(
            f"{label}: max_batch_wait_ms applies to batching; give max_batch_size (2 or more) "
            "too, or remove max_batch_wait_ms."
        )
    if entity.scale_to_zero_idle_seconds is not None and not entity.scale_to_zero_enabled:
        raise InvalidParameter(
            f"{label}: scale_to_zero_idle_seconds applies only with scale_to_zero_enabled: "
            "true; set it or remove scale_to_zero_idle_seconds."
        )


def _check_order(label: str, what: str, low: int | None, high: int | None) -> None:
    if low is not None and high is not None and low > high:
        raise InvalidParameter(f"{label}: min_{what} ({low}) is greater than max_{what} ({high}).")


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def _repeated(names: list[str]) -> list[str]:
    return sorted(name for name, count in Counter(names).items() if count > 1)


def _check_unique(names: list[str]) -> None:
    repeated = _repeated(names)
    if repeated:
        raise InvalidParameter(
            f"Served entity names used more than once: {_quoted(repeated)}; "
            "give each served entity a unique name."
        )


def _shared_task(inputs: list[ServedEntityInput]) -> str | None:
    externals = [e.external_model for e in inputs if e.external_model is not None]
    if not externals:
        return None
    if len(externals) != len(inputs):
        raise InvalidParameter(
            "config mixes external models with registered models; an endpoint serves one kind only."
        )
    tasks = sorted({model.task for model in externals})
    if len(tasks) > 1:
        raise InvalidParameter(
            f"The external models of one endpoint must share one task; got {', '.join(tasks)}."
        )
    return tasks[0]


def _routes(traffic: TrafficConfig | None, names: list[str]) -> list[TrafficRoute]:
    routes = traffic.routes if traffic is not None and traffic.routes else []
    if not routes:
        if len(names) > 1:
            raise InvalidParameter(
                f"config has {len(names)} served entities but no traffic_config: give routes "
                "whose traffic_percentage values sum to 100."
            )
        return [TrafficRoute(names[0], 100)]
    targets = [_route_target(r.served_entity_name, r.served_model_name, names) for r in routes]
    _check_unique_routes(targets)
    total = sum(route.traffic_percentage for route in routes)
    if total != 100:
        raise InvalidParameter(f"traffic_config routes sum to {total}, they must sum to 100.")
    return [
        TrafficRoute(target, route.traffic_percentage)
        for target, route in zip(targets, routes, strict=True)
    ]


def _route_target(entity_name: str | None, model_name: str | None, names: list[str]) -> str:
    given = sorted({name for name in (entity_name, model_name) if name is not None})
    if len(given) != 1:
        raise InvalidParameter(
            "Each traffic_config route names one served entity in served_entity_name "
            f"(or served_model_name); got {given or 'none'}."
        )
    if given[0] not in names:
        raise InvalidParameter(
            f"traffic_config route names served entity '{given[0]}', which is not in this "
            f"config (served entities: {', '.join(names)})."
        )
    return given[0]


def _check_unique_routes(targets: list[str]) -> None:
    repeated = _repeated(targets)
    if repeated:
        raise InvalidParameter(
            f"traffic_config has several routes to {_quoted(repeated)}; give one route "
            "per served entity."
        )
