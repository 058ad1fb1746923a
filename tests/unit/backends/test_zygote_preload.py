"""What a zygote imports ahead of a model: read from the artifact, never from running it."""

from __future__ import annotations

from pathlib import Path

from berth.backends.zygotes import preload_modules, required_distributions


def test_an_mlflow_model_preloads_pyfunc_and_its_flavor(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n"
    )
    assert preload_modules(tmp_path, "mlflow") == ("mlflow.pyfunc", "mlflow.sklearn")
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    assert preload_modules(tmp_path, "mlflow") == ("mlflow.pyfunc",)


def test_a_score_py_preloads_its_top_level_imports_but_not_its_own_modules(
    tmp_path: Path,
) -> None:
    (tmp_path / "helpers.py").write_text("")
    (tmp_path / "score.py").write_text(
        "import os, numpy as np\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from helpers import thing\n"
        "from . import sibling\n"
        "import numpy\n"
        "def predict(data):\n    import torch\n"
    )
    assert preload_modules(tmp_path, "score_py") == ("os", "numpy", "sklearn.linear_model")
    (tmp_path / "score.py").write_text("def broken(:\n")
    assert preload_modules(tmp_path, "score_py") == ()


def test_requirements_name_distributions_without_versions_options_or_urls(
    tmp_path: Path,
) -> None:
    (tmp_path / "requirements.txt").write_text(
        "mlflow==3.17.2\n"
        "scikit-learn >= 1.6 ; python_version > '3.8'\n"
        "# a comment\n"
        "--extra-index-url https://example.invalid/simple\n"
        "torch[cpu]\n"
        "pkg @ https://example.invalid/pkg.whl\n"
        "\n"
    )
    assert required_distributions(tmp_path) == ("mlflow", "scikit-learn", "torch")
    assert required_distributions(tmp_path / "missing") == ()
