"""Provisioned throughput at the API: a served entity's band checked against its version's
measured chunk, the model-units (``/serving-endpoints/pt``) bodies read as ordinary configs,
and the ``get-model-optimization-info`` answer.

Pure functions: the chunk is measured by the controller and handed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from berth.api.schemas.endpoints import (
    CreatePtEndpoint,
    CreateServingEndpoint,
    EndpointCoreConfigInput,
    PtEndpointCoreConfig,
    ServedEntityInput,
)
from berth.core.dataplane import CALIBRATED_FORMATS
from berth.core.endpoint_config import ServedEntity
from berth.core.errors import InvalidParameter
from berth.core.throughput import Calibration

Json = dict[str, Any]


def check_open_llm(label: str, entity: ServedEntity, model_format: str) -> None:
    """Provisioned throughput is for open LLMs: a version of another format is sized by
    concurrency."""
    if model_format not in CALIBRATED_FORMATS:
        raise InvalidParameter(
            f"{label}: provisioned throughput applies to open LLMs (GGUF model versions); "
            f"model '{entity.entity_name}' version {entity.entity_version} is a {model_format} "
            "model: size it with workload_size or min/max_provisioned_concurrency instead."
        )


def check_multiples(label: str, entity: ServedEntity, calibration: Calibration) -> None:
    """``min/max_provisioned_throughput`` are whole chunks of the version on this host."""
    chunk = calibration.chunk_tps
    for field in ("min_provisioned_throughput", "max_provisioned_throughput"):
        value: int | None = getattr(entity, field)
        if value is None or value % chunk == 0:
            continue
        below = value // chunk * chunk
        nearest = f"{below} or {below + chunk}" if below else f"{chunk}"
        raise InvalidParameter(
            f"{label}: {field} must be a multiple of {chunk} tokens/s (the throughput chunk "
            f"of {entity.entity_name} version {entity.entity_version} on this host); it is "
            f"{value}: {nearest} would do."
        )


def pt_endpoint(body: CreatePtEndpoint) -> CreateServingEndpoint:
    """A model-units create read as an ordinary create."""
    return CreateServingEndpoint(
        name=body.name,
        config=pt_config(body.config),
        ai_gateway=body.ai_gateway,
        budget_policy_id=body.budget_policy_id,
        email_notifications=body.email_notifications,
        tags=body.tags,
    )


def pt_config(config: PtEndpointCoreConfig) -> EndpointCoreConfigInput:
    """A model-units config read as an ordinary one; each entity keeps its units, so its band
    follows the chunk, should it be measured again."""
    return EndpointCoreConfigInput(
        served_entities=[
            ServedEntityInput.model_validate(entity.model_dump(exclude_none=True))
            for entity in config.served_entities or []
        ],
        traffic_config=config.traffic_config,
    )


def optimization_info(
    model_format: str, details: Mapping[str, Any], calibration: Calibration | None
) -> Json:
    """Databricks' answer: ``optimizable``, and for an open LLM its ``model_type`` (the GGUF
    architecture its registration read from the header) and ``throughput_chunk_size``
    (tokens/s), plus berth's ``calibration`` (how and when the chunk was measured)."""
    if model_format not in CALIBRATED_FORMATS or calibration is None:
        return {"optimizable": False}
    answer: Json = {"optimizable": True}
    if details.get("architecture"):
        answer["model_type"] = details["architecture"]
    answer["throughput_chunk_size"] = calibration.chunk_tps
    answer["calibration"] = calibration.to_json()
    return answer
