"""Specs that ask for a Python this machine has not installed are refused, naming what it has."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.core.errors import InvalidParameter
from berth.envs import resolve_spec
from tests.support.envs import OWN, MakeArtifact

pytestmark = pytest.mark.integration


def _runtime_yaml(python: str = OWN, env_path: str | None = None) -> str:
    path = f"    INFERENCE_ENV_PATH: {env_path}\n" if env_path else ""
    return (
        "MODEL_ARTIFACT_VERSION: '3.0'\n"
        "MODEL_DEPLOYMENT:\n"
        "  INFERENCE_CONDA_ENV:\n"
        f"{path}"
        f"    INFERENCE_PYTHON_VERSION: '{python}'\n"
    )


def _refusal(root: Path, model_format: str = "score_py") -> str:
    with pytest.raises(InvalidParameter) as caught:
        resolve_spec(root, model_format)
    return caught.value.message


def test_python_that_is_not_installed_is_refused_naming_what_is(
    make_artifact: MakeArtifact,
) -> None:
    root = make_artifact({"runtime.yaml": _runtime_yaml("3.99"), "requirements.txt": "six\n"})
    message = _refusal(root)
    assert "Python 3.99, which is not installed on this server (installed: " in message
    assert "berth does not download interpreters" in message
