"""Which kind of artifact a folder holds, told apart by the files that describe it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from berth.core.errors import InvalidParameter
from berth.registry import gguf, hf_folder
from berth.registry.mlmodel import MLMODEL, inspect_mlflow
from berth.registry.score_py import SCORE_PY, inspect_score_py


class ArtifactFormat(StrEnum):
    MLFLOW = "mlflow"
    SCORE_PY = "score_py"
    GGUF = "gguf"
    """An open LLM's weights in one GGUF file, served by llama.cpp."""
    HUGGINGFACE = "huggingface"
    """An open LLM's weights as a Hugging Face-style folder, served by the GPU engine (vLLM,
    else transformers)."""
    CONTAINER = "container"
    """A model server of the user's own (Vertex's custom container, OCI's bring your own
    container): a process in the artifact's environment, or an image. The version's details
    hold its ``container_spec``; its artifact is any folder, or none (an empty one)."""


GGUF_SUFFIX = ".gguf"
IMAGE_ENVIRONMENT: Mapping[str, Any] = {
    "hash": None,
    "summary": "The container image brings its own environment.",
}
"""The environment details of an image-backed container version: berth builds nothing for it,
whatever requirements.txt its artifact holds (an MLflow model's, say)."""


@dataclass(frozen=True, slots=True)
class DetectedArtifact:
    format: ArtifactFormat
    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ContainerVersion:
    """A custom container, as the API validated it: its normalised spec, and the LLM task
    it answers, if it declares one (a berth extension: ``llm/v1/chat`` and the like)."""

    spec: Mapping[str, Any]
    task: str | None = None

    @property
    def uses_image(self) -> bool:
        return bool(self.spec.get("image_uri"))

    def detected(self) -> DetectedArtifact:
        """Whatever its artifact holds, the version is this container."""
        details: dict[str, Any] = {"container_spec": dict(self.spec)}
        if self.task is not None:
            details["task"] = self.task
        return DetectedArtifact(ArtifactFormat.CONTAINER, details)


def detect(root: Path, where: str) -> DetectedArtifact:
    """Tell the format of the artifact in ``root`` and validate it; ``where`` names the source.

    An ``MLmodel`` file makes it an MLflow model, whatever else is there; otherwise a
    ``score.py`` makes it an OCI artifact; otherwise one ``.gguf`` file makes it an open LLM,
    described from its header (`gguf.describe`); otherwise ``config.json`` beside
    ``.safetensors`` weights makes it an open LLM in a Hugging Face-style folder
    (`hf_folder.describe`).
    """
    if (root / MLMODEL).is_file():
        return DetectedArtifact(ArtifactFormat.MLFLOW, inspect_mlflow(root))
    if (root / SCORE_PY).is_file():
        return DetectedArtifact(ArtifactFormat.SCORE_PY, inspect_score_py(root))
    weights = [p for p in root.iterdir() if p.suffix == GGUF_SUFFIX and p.is_file()]
    if len(weights) > 1:
        raise InvalidParameter(
            f"{where} holds {len(weights)} {GGUF_SUFFIX} files; a model version is one model: "
            f"register a folder holding exactly one, or the {GGUF_SUFFIX} file itself."
        )
    if weights:
        details = gguf.describe(weights[0], f"{weights[0].name} in {where}")
        return DetectedArtifact(ArtifactFormat.GGUF, details)
    if hf_folder.is_hf_folder(root):
        return DetectedArtifact(ArtifactFormat.HUGGINGFACE, hf_folder.describe(root, where))
    raise InvalidParameter(
        f"No {MLMODEL} file with a python_function flavor, no {SCORE_PY} defining "
        f"load_model and predict, no {GGUF_SUFFIX} file and no Hugging Face-style folder "
        f"({hf_folder.CONFIG} + {hf_folder.SAFETENSORS_SUFFIX} + tokenizer) were found in "
        f"{where} ({_contents(root)})."
    )


def _contents(root: Path) -> str:
    """How much the folder holds, never what: a path on the server's machine may be anyone's."""
    count = sum(1 for _ in root.iterdir())
    if not count:
        return "it is empty"
    return f"it holds {count} entr{'y' if count == 1 else 'ies'}"
