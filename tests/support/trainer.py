"""A user's own environment, apart from berth's: where tests save MLflow models, as a data
scientist would before registering them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from berth.envs import find_uv

SKLEARN = "scikit-learn==1.6.1"
MLFLOW = "mlflow-skinny==3.17.2"


@pytest.fixture(scope="session")
def trainer_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv with pinned scikit-learn, MLflow (skinny) and pandas."""
    venv, uv = tmp_path_factory.mktemp("trainer") / "venv", str(find_uv())
    subprocess.run([uv, "venv", "-q", "--python", "3.11", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [uv, "pip", "install", "-q", "--python", str(python), SKLEARN, MLFLOW, "pandas"]
    subprocess.run(install, check=True)
    return python
