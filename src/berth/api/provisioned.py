"""Provisioned throughput at the API: a served entity's band checked against its version's
measured chunk, the model-units (``/serving-endpoints/pt``) bodies read as ordinary configs,
and the ``get-model-optimization-info`` answer.

Pure functions: the chunk is measured by the controller and handed in.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from berth.api.schemas.endpoints import (
    CreatePtEndpoint,
    CreateServingEndpoint,
    EndpointCoreConfigInput,
    PtEndpointCoreConfig,
    ServedEntityInput,
)
from berth.core.dataplane import ENGINE_FORMATS
from berth.core.endpoint_config import ServedEntity
from berth.core.errors import InvalidParameter
from berth.core.throughput import Calibration

Json = dict[str, Any]

_GGUF_MAGIC = b"GGUF"
_ARCHITECTURE_KEY = b"general.architecture"
_GGUF_STRING = 8
_MAX_ARCHITECTURE = 256


def check_open_llm(label: str, entity: ServedEntity, model_format: str) -> None:
    """Provisioned throughput is for open LLMs: a version of another format is sized by
    concurrency."""
    if model_format not in ENGINE_FORMATS:
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
    model_format: str, details: Mapping[str, Any], artifact: str, calibration: Calibration | None
) -> Json:
    """Databricks' answer: ``optimizable``, and for an open LLM its ``model_type`` (the GGUF
    architecture) and ``throughput_chunk_size`` (tokens/s), plus berth's ``calibration``
    (how and when the chunk was measured)."""
    if model_format not in ENGINE_FORMATS or calibration is None:
        return {"optimizable": False}
    answer: Json = {"optimizable": True}
    model_type = details.get("architecture") or gguf_architecture(
        Path(artifact) / str(details.get("weights", ""))
    )
    if model_type:
        answer["model_type"] = model_type
    answer["throughput_chunk_size"] = calibration.chunk_tps
    answer["calibration"] = calibration.to_json()
    return answer


def gguf_architecture(weights: Path) -> str | None:
    """``general.architecture`` of a GGUF file, read from its first key/value pair, where
    llama.cpp's writer always puts it; None when it is not there.

    A minimal read for versions whose registration did not record the architecture in their
    details."""
    try:
        with weights.open("rb") as file:
            head = file.read(32)  # magic, version, tensor count, key/value count, key length
            if len(head) < 32 or head[:4] != _GGUF_MAGIC:
                return None
            if struct.unpack_from("<Q", head, 24)[0] != len(_ARCHITECTURE_KEY):
                return None
            if file.read(len(_ARCHITECTURE_KEY)) != _ARCHITECTURE_KEY:
                return None
            kind, length = struct.unpack("<IQ", file.read(12))
            if kind != _GGUF_STRING or length > _MAX_ARCHITECTURE:
                return None
            return file.read(length).decode("utf-8", errors="replace") or None
    except (OSError, struct.error):
        return None
