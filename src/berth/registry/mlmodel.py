"""Validating an MLflow model folder from its ``MLmodel`` file alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from berth.core.errors import InvalidParameter
from berth.registry.documents import files_present, read_yaml_mapping

MLMODEL = "MLmodel"
PYFUNC = "python_function"
ENV_FILES = ("python_env.yaml", "conda.yaml", "requirements.txt")


def inspect_mlflow(root: Path) -> dict[str, Any]:
    """The ``details`` of an MLflow model; it must be servable through ``python_function``."""
    document = read_yaml_mapping(root / MLMODEL)
    flavors = document.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise InvalidParameter(
            "MLmodel has no 'flavors' section; save the model with mlflow so MLmodel names "
            "its flavors."
        )
    pyfunc = flavors.get(PYFUNC)
    if not isinstance(pyfunc, dict):
        raise InvalidParameter(
            f"MLmodel has no flavors.{PYFUNC} section (flavors found: "
            f"{', '.join(sorted(map(str, flavors)))}); berth serves MLflow models through "
            f"{PYFUNC}, so log the model with a flavor that provides it."
        )
    loader_module = pyfunc.get("loader_module")
    if not isinstance(loader_module, str) or not loader_module:
        raise InvalidParameter(
            f"MLmodel: flavors.{PYFUNC}.loader_module is missing; MLflow needs it to load "
            "the model."
        )
    return {
        "loader_module": loader_module,
        "python_version": _text(pyfunc.get("python_version")),
        "mlflow_version": _text(document.get("mlflow_version")),
        "flavors": sorted(map(str, flavors)),
        "has_signature": isinstance(document.get("signature"), dict),
        "env_files": files_present(root, ENV_FILES),
    }


def _text(value: object) -> str | None:
    return None if value is None else str(value)
