"""Helpers for the environment tests: berth's own Python version, tiny artifact folders and a
tiny wheel."""

from __future__ import annotations

import io
import tarfile
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from berth.core.errors import InvalidParameter
from berth.envs import resolve_spec
from berth.envs.uv_command import own_python

#: berth's own major.minor: specs that ask for it need no other interpreter on the machine.
OWN = own_python()

MakeArtifact = Callable[[dict[str, str]], Path]


def write_artifact(root: Path, files: dict[str, str]) -> Path:
    """A folder ``root`` holding those (dedented) files."""
    root.mkdir()
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


SETUPTOOLS = '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
WHEEL = "Wheel-Version: 1.0\nGenerator: berth-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def write_wheel(path: Path, version: str = "0.1", value: str = "1") -> Path:
    """A minimal pure-Python wheel of the package ``tinypkg`` holding ``VALUE = value``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    info = f"tinypkg-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("tinypkg/__init__.py", f"VALUE = {value}\n")
        wheel.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: tinypkg\nVersion: {version}\n"
        )
        wheel.writestr(f"{info}/WHEEL", WHEEL)
        wheel.writestr(f"{info}/RECORD", "")
    return path


def write_sdist(path: Path, setup_py: str) -> Path:
    """A source archive of the package ``broken`` whose ``setup.py`` runs ``setup_py``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    files = {
        "pyproject.toml": SETUPTOOLS,
        "setup.py": f"from setuptools import setup\n{setup_py}\nsetup()\n",
    }
    with tarfile.open(path, "w:gz") as sdist:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"broken-1.0/{name}")
            info.size = len(data)
            sdist.addfile(info, io.BytesIO(data))
    return path


def runtime_yaml(python: str = OWN, env_path: str | None = None) -> str:
    """A score.py artifact's ``runtime.yaml`` asking for ``python``."""
    path = f"    INFERENCE_ENV_PATH: {env_path}\n" if env_path else ""
    return (
        "MODEL_ARTIFACT_VERSION: '3.0'\n"
        "MODEL_DEPLOYMENT:\n"
        "  INFERENCE_CONDA_ENV:\n"
        f"{path}"
        f"    INFERENCE_PYTHON_VERSION: '{python}'\n"
    )


def refusal(root: Path, model_format: str = "score_py") -> str:
    """The message of the 400 that resolving ``root``'s environment answers."""
    with pytest.raises(InvalidParameter) as caught:
        resolve_spec(root, model_format)
    return caught.value.message
