"""What a served entity needs of the host: GPUs for a GPU workload type, a GPU workload type
for weights that only a GPU engine serves, and podman for a container version's image."""

from __future__ import annotations

from sqlalchemy.orm import Session

from berth.api.endpoint_config import NormalisedConfig
from berth.core.errors import InvalidParameter
from berth.core.gpus import GPUS_PER_WORKLOAD, gpus_for
from berth.core.images import ImageRuntime
from berth.registry.formats import ArtifactFormat
from berth.store import models
from berth.store.models import VersionInfo

GPU_FORMATS = frozenset({"huggingface"})
"""Formats whose engine (vLLM, else transformers) runs on GPUs only."""


def check_hardware(
    session: Session, config: NormalisedConfig, host_gpus: int | None, images: ImageRuntime
) -> None:
    """Refuse, before anything is stored, an entity this host cannot run. ``host_gpus`` None:
    replicas run on a Ray cluster, whose nodes' GPUs Ray counts when it places them."""
    for index, entity in enumerate(config.served_entities):
        label = f"served_entities[{index}] ({entity.name})"
        needed = gpus_for(entity.workload_type)
        key = entity.registered_model
        if key is not None:
            version = models.get_version(session, key[0], int(key[1]))
            _check_format(label, version, needed, images)
        if host_gpus is not None and needed > host_gpus:
            raise InvalidParameter(
                f"{label}: workload_type {entity.workload_type} holds {needed} GPU"
                f"{'s' if needed > 1 else ''} per replica and this host has "
                + (
                    "none that berth may use (BERTH_REPLICAS__GPUS)"
                    if not host_gpus
                    else f"{host_gpus}"
                )
                + "; choose a CPU workload type, or serve it where the GPUs are."
            )


def _check_format(label: str, version: VersionInfo, gpus: int, images: ImageRuntime) -> None:
    what = f"{label}: model '{version.model}' version {version.version} is"
    if version.format == ArtifactFormat.CONTAINER and version.details["container_spec"].get(
        "image_uri"
    ):
        if images.missing:
            raise InvalidParameter(
                f"{what} a custom container image, which this host cannot run: "
                f"{images.missing}. Or serve a container version without image_uri, which "
                "runs as a process in its own environment."
            )
        if gpus:
            raise InvalidParameter(
                f"{what} a custom container image, and berth gives images no GPUs yet: choose "
                "a CPU workload type."
            )
    if version.format in GPU_FORMATS and gpus == 0:
        raise InvalidParameter(
            f"{what} a Hugging Face-style folder, which berth serves with a GPU engine (vLLM, "
            f"else transformers): set workload_type to one of {', '.join(GPUS_PER_WORKLOAD)}, "
            "or register a GGUF of the model to serve it on CPUs."
        )
