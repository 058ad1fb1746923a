"""An artifact's environment spec: the Python version and packages its model asks for.

Resolved at registration, so that an environment berth cannot build is refused with a 400
there instead of failing a deployment later. ``None`` means the artifact asks for nothing and
the model runs in berth's own environment.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from platform import machine
from typing import Any

import yaml

from berth.core.errors import InvalidParameter
from berth.envs.requirements import (
    LOCAL_PREFIX,
    MLFLOW_PACKAGES,
    Requirements,
    project_name,
    read_requirements,
)
from berth.envs.uv_command import ensure_python, find_uv, own_python

MLMODEL = "MLmodel"
PYTHON_ENV = "python_env.yaml"
REQUIREMENTS = "requirements.txt"
CONDA_FILES = ("conda.yaml", "environment.yaml")
RUNTIME_YAML = "runtime.yaml"
PYFUNC_IMPORTS = ("numpy", "pandas")
#: Bumped when the layout of built environments changes, so old cache entries are not reused.
SPEC_FORMAT = 1

_VERSION = re.compile(r"^(\d+)\.(\d+)(\.[0-9*]+)?[a-z0-9]*$")
_CONDA_PACKAGE = re.compile(r"^([A-Za-z0-9._-]+)\s*(.*)$")
_CONDA_PYTHON = re.compile(r"^(?:==?\s*|\s+)(\d+\.\d+)")
_NO_REQUIREMENTS = Requirements((), ())
#: The inference engine an open LLM's replicas run, installed into the model's environment.
ENGINE_REQUIREMENTS = ("xllamacpp==2026.10.11549",)
#: The GPU engine a Hugging Face-style folder's replicas run when its requirements.txt does not
#: name vLLM; when it does, vLLM serves the model instead (and brings its own torch and
#: transformers, so these are left out).
HF_ENGINE_REQUIREMENTS = ("transformers==5.25.0", "torch", "accelerate")
VLLM = "vllm"


@dataclass(frozen=True, slots=True)
class EnvSpec:
    """What an environment holds; two artifacts with equal specs share one environment."""

    python: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...] = ()

    @property
    def uses_artifact_files(self) -> bool:
        """Whether some requirement is a wheel inside the artifact, so builds need the artifact."""
        return any(line.startswith(LOCAL_PREFIX) for line in self.requirements + self.constraints)

    def to_json(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "requirements": list(self.requirements),
            "constraints": list(self.constraints),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EnvSpec:
        return cls(
            str(data["python"]),
            tuple(map(str, data["requirements"])),
            tuple(map(str, data.get("constraints", ()))),
        )

    def hash(self, platform: str | None = None) -> str:
        """The cache key: sha256 hex of the spec and the platform it is built for."""
        document = {"format": SPEC_FORMAT, "platform": platform or current_platform()}
        text = json.dumps({**self.to_json(), **document}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def current_platform() -> str:
    """The platform tag of this machine, e.g. ``linux-x86_64``."""
    return f"{sys.platform}-{machine()}"


def resolve_spec(artifact: Path, model_format: str, *, uv: Path | None = None) -> EnvSpec | None:
    """The environment the artifact in ``artifact`` asks for, or None for berth's own.

    ``model_format`` is the registry's format (``mlflow``, ``score_py``, ``gguf``,
    ``huggingface`` or ``container``). Raises ``InvalidParameter`` when the artifact asks for
    an environment berth cannot build, including a Python version that uv cannot find
    installed here.
    """
    readers: dict[str, Callable[[Path], EnvSpec | None]] = {
        "mlflow": _mlflow_spec,
        "score_py": _score_py_spec,
        "gguf": lambda _: EnvSpec(own_python(), ENGINE_REQUIREMENTS),
        "huggingface": _huggingface_spec,
        "container": _container_spec,
    }
    if model_format not in readers:
        raise ValueError(f"unknown artifact format {model_format!r}")
    spec = readers[model_format](artifact)
    if spec is not None and spec.python != own_python():
        ensure_python(spec.python, uv or find_uv())
    return spec


def _mlflow_spec(root: Path) -> EnvSpec | None:
    mlmodel = _yaml_mapping(root / MLMODEL)
    flavors = _mapping(mlmodel.get("flavors"), f"{MLMODEL}: flavors")
    pyfunc = _mapping(flavors.get("python_function"), f"{MLMODEL}: flavors.python_function")
    if (root / PYTHON_ENV).is_file():
        python, found = _python_env(root)
    elif (root / REQUIREMENTS).is_file():
        python, found = _conda_python(root), _requirements_file(root)
    elif (root / CONDA_FILES[0]).is_file():
        python, found = _conda(root, CONDA_FILES[0])
    else:
        return None
    declared = _version(pyfunc.get("python_version"), f"{MLMODEL}: python_version")
    mlflow_version = mlmodel.get("mlflow_version")
    return EnvSpec(
        python or declared or own_python(),
        _with_mlflow(found.requirements, None if mlflow_version is None else str(mlflow_version)),
        found.constraints,
    )


def _score_py_spec(root: Path) -> EnvSpec | None:
    where, conda_env = _inference_env(root)
    declared = _version(
        conda_env.get("INFERENCE_PYTHON_VERSION"), f"{where}.INFERENCE_PYTHON_VERSION"
    )
    conda_file = next((name for name in CONDA_FILES if (root / name).is_file()), None)
    python: str | None = None
    if (root / REQUIREMENTS).is_file():
        found = _requirements_file(root)
    elif conda_file is not None:
        python, found = _conda(root, conda_file)
    else:
        _refuse_env_path(conda_env.get("INFERENCE_ENV_PATH"))
        found = _NO_REQUIREMENTS
    python = declared or python or own_python()
    if not found.requirements and python == own_python():
        return None
    return EnvSpec(python, found.requirements, found.constraints)


def _huggingface_spec(root: Path) -> EnvSpec:
    """The engine, then what the folder's requirements.txt adds (a tokenizer's extras, a
    quantization kernel); a package both name is taken as the folder pins it."""
    found = _requirements_file(root) if (root / REQUIREMENTS).is_file() else _NO_REQUIREMENTS
    named = {project_name(line) for line in found.requirements}
    engine = () if VLLM in named else HF_ENGINE_REQUIREMENTS
    added = tuple(line for line in engine if project_name(line) not in named)
    return EnvSpec(own_python(), (*added, *found.requirements), found.constraints)


def _container_spec(root: Path) -> EnvSpec | None:
    """A custom container's process runs on berth's Python with what the artifact's
    requirements.txt asks for (nothing else describes a server of the user's own); without
    one, or with nothing in it, in berth's own environment."""
    if not (root / REQUIREMENTS).is_file():
        return None
    found = _requirements_file(root)
    if not found.requirements:
        return None
    return EnvSpec(own_python(), found.requirements, found.constraints)


def _inference_env(root: Path) -> tuple[str, dict[str, Any]]:
    """runtime.yaml's ``MODEL_DEPLOYMENT.INFERENCE_CONDA_ENV`` and its name for messages."""
    runtime = _yaml_mapping(root / RUNTIME_YAML) if (root / RUNTIME_YAML).is_file() else {}
    where = f"{RUNTIME_YAML}: MODEL_DEPLOYMENT"
    deployment = _mapping(runtime.get("MODEL_DEPLOYMENT"), where)
    where += ".INFERENCE_CONDA_ENV"
    return where, _mapping(deployment.get("INFERENCE_CONDA_ENV"), where)


def _python_env(root: Path) -> tuple[str | None, Requirements]:
    document = _yaml_mapping(root / PYTHON_ENV)
    dependencies = document.get("dependencies") or []
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise InvalidParameter(
            f"{PYTHON_ENV}: dependencies must be a list of requirement lines, such as "
            "['-r requirements.txt']."
        )
    python = _version(document.get("python"), f"{PYTHON_ENV}: python")
    return python, read_requirements(root, dependencies, PYTHON_ENV)


def _requirements_file(root: Path) -> Requirements:
    text = (root / REQUIREMENTS).read_text(encoding="utf-8", errors="replace")
    return read_requirements(root, text.splitlines(), REQUIREMENTS)


@dataclass
class _CondaEnv:
    python: str | None = None
    pip: list[str] = field(default_factory=list)
    conda_only: list[str] = field(default_factory=list)


def _conda(root: Path, name: str) -> tuple[str | None, Requirements]:
    """The python version and pip packages of a conda file, which must ask for nothing else."""
    env = _read_conda(root, name)
    if env.conda_only:
        example = ", ".join(_as_pip(item) for item in env.conda_only[:2])
        raise InvalidParameter(
            f"{name} lists conda packages berth cannot install: {', '.join(env.conda_only)}. "
            f"berth builds environments with uv from the package registry; list them in the "
            f"pip section instead (- pip: [{example}]) or in requirements.txt."
        )
    return env.python, read_requirements(root, env.pip, f"{name} (pip section)")


def _conda_python(root: Path) -> str | None:
    name = CONDA_FILES[0]
    return _read_conda(root, name).python if (root / name).is_file() else None


def _read_conda(root: Path, name: str) -> _CondaEnv:
    dependencies = _yaml_mapping(root / name).get("dependencies") or []
    if not isinstance(dependencies, list):
        raise InvalidParameter(f"{name}: dependencies must be a list.")
    env = _CondaEnv()
    for item in dependencies:
        if isinstance(item, dict):
            _read_conda_section(item, name, env)
        elif isinstance(item, str):
            _read_conda_package(item, env)
        else:
            raise InvalidParameter(f"{name}: the dependency {item!r} is not a package name.")
    return env


def _read_conda_section(section: dict[Any, Any], name: str, env: _CondaEnv) -> None:
    for key, value in section.items():
        if key != "pip" or not isinstance(value, list):
            raise InvalidParameter(
                f"{name}: the dependency section {key!r} is not supported; berth reads "
                "'python', 'pip' and a 'pip:' list of requirement lines."
            )
        env.pip.extend(map(str, value))


def _read_conda_package(item: str, env: _CondaEnv) -> None:
    match = _CONDA_PACKAGE.match(item.split("::")[-1].strip())
    package, constraint = (match.group(1).lower(), match.group(2)) if match else (item, "")
    if package == "python":
        version = _CONDA_PYTHON.match(constraint) if constraint else None
        env.python = version.group(1) if version else None
    elif package != "pip":
        env.conda_only.append(item)


def _as_pip(conda_item: str) -> str:
    """``numpy=1.26`` as pip writes it, for the hint in the error message."""
    return re.sub(r"(?<![=<>!])=(?!=)", "==", conda_item.split("::")[-1].replace(" ", ""), count=1)


def _with_mlflow(requirements: tuple[str, ...], mlflow_version: str | None) -> tuple[str, ...]:
    """The runtime loads MLflow models with ``mlflow.pyfunc``, so the env must have MLflow.

    ``mlflow.pyfunc`` imports numpy and pandas, which full ``mlflow`` depends on but
    ``mlflow-skinny`` does not, so they come along with the skinny package.
    """
    names = {project_name(line) for line in requirements}
    added = []
    if not names & MLFLOW_PACKAGES:
        added.append(f"mlflow-skinny=={mlflow_version}" if mlflow_version else "mlflow-skinny")
    if "mlflow" not in names:
        added += [name for name in PYFUNC_IMPORTS if name not in names]
    return (*requirements, *added)


def _refuse_env_path(env_path: object) -> None:
    if env_path:
        raise InvalidParameter(
            f"{RUNTIME_YAML}: INFERENCE_ENV_PATH is {str(env_path)!r}, a prebuilt conda "
            "environment that berth cannot use: berth builds environments from requirements; "
            "list your packages in requirements.txt (or conda.yaml's pip section) beside "
            "score.py (an empty one if the model needs nothing beyond the standard library)."
        )


def _version(value: object, where: str) -> str | None:
    """A Python version reduced to major.minor (``3.11.7`` -> ``3.11``)."""
    if value is None:
        return None
    if isinstance(value, float):
        raise InvalidParameter(
            f"{where} must be a quoted string such as '3.11'; unquoted, YAML reads it as the "
            f"number {value}."
        )
    match = _VERSION.match(str(value).strip())
    if match is None:
        raise InvalidParameter(f"{where} is {value!r}; write a Python version such as '3.11'.")
    return f"{match.group(1)}.{match.group(2)}"


def _yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_bytes())
    except (yaml.YAMLError, OSError) as exc:
        raise InvalidParameter(f"{path.name} cannot be read as YAML: {exc}.") from exc
    if not isinstance(document, dict):
        raise InvalidParameter(f"{path.name} must be a YAML mapping of keys to values.")
    return document


def _mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter(f"{where} must be a mapping of keys to values.")
    return value
