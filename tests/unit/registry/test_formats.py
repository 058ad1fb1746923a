"""Telling MLflow models from OCI artifacts, and the messages for artifacts that are neither."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from berth.core.errors import InvalidParameter
from berth.registry.formats import ArtifactFormat, detect
from tests.support.llm import SMOLLM2_FILE, smollm2_gguf

FAKES = Path(__file__).resolve().parents[2] / "fakes" / "models"


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FAKES / name, tmp_path / name))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _refusal(root: Path) -> str:
    with pytest.raises(InvalidParameter) as caught:
        detect(root, "source 'here'")
    return caught.value.message


def test_mlflow_model_details_come_from_mlmodel(tmp_path: Path) -> None:
    found = detect(_copy("sum_mlflow", tmp_path), "source 'here'")
    assert found.format is ArtifactFormat.MLFLOW
    assert found.details == {
        "loader_module": "sum_loader",
        "python_version": "3.11.7",
        "mlflow_version": "3.17.2",
        "flavors": ["python_function"],
        "has_signature": True,
        "env_files": ["python_env.yaml", "requirements.txt"],
    }


def test_score_py_details_come_from_runtime_yaml(tmp_path: Path) -> None:
    found = detect(_copy("sum_score", tmp_path), "source 'here'")
    assert found.format is ArtifactFormat.SCORE_PY
    assert found.details == {
        "python_version": "3.11",
        "model_artifact_version": "3.0",
        "has_runtime_yaml": True,
        "env_files": ["requirements.txt"],
    }


def test_score_py_without_runtime_yaml_is_accepted(tmp_path: Path) -> None:
    root = _copy("sum_score", tmp_path)
    (root / "runtime.yaml").unlink()
    (root / "requirements.txt").unlink()
    _write(root / "environment.yaml", "name: sum\n")
    found = detect(root, "source 'here'")
    assert found.details == {
        "python_version": None,
        "model_artifact_version": None,
        "has_runtime_yaml": False,
        "env_files": ["environment.yaml"],
    }


def test_mlmodel_wins_over_score_py(tmp_path: Path) -> None:
    root = _copy("sum_mlflow", tmp_path)
    shutil.copy(FAKES / "sum_score" / "score.py", root / "score.py")
    assert detect(root, "source 'here'").format is ArtifactFormat.MLFLOW


def test_no_format_names_what_was_looked_for_not_what_is_there(tmp_path: Path) -> None:
    """A server-side folder may be anyone's: the error counts its entries, never names them."""
    _write(tmp_path / "model.pkl", "x")
    _write(tmp_path / "data" / "a.csv", "x")
    assert _refusal(tmp_path) == (
        "No MLmodel file with a python_function flavor, no score.py defining load_model "
        "and predict, no .gguf file and no Hugging Face-style folder (config.json + "
        ".safetensors + tokenizer) were found in source 'here' (it holds 2 entries)."
    )


def test_empty_folder_is_called_empty(tmp_path: Path) -> None:
    assert "(it is empty)" in _refusal(tmp_path)


@pytest.mark.parametrize(
    ("mlmodel", "expected"),
    [
        ("flavors: [unclosed\n", "MLmodel is not valid YAML at line 2"),
        ("- a\n- b\n", "MLmodel must be a YAML mapping of keys to values, it is a list."),
        ("", "MLmodel must be a YAML mapping of keys to values, it is empty."),
        ("artifact_path: model\n", "MLmodel has no 'flavors' section"),
        (
            "flavors:\n  sklearn: {pickled_model: model.pkl}\n",
            "MLmodel has no flavors.python_function section (flavors found: sklearn)",
        ),
        (
            "flavors:\n  python_function: {python_version: 3.11.7}\n",
            "MLmodel: flavors.python_function.loader_module is missing",
        ),
    ],
)
def test_broken_mlmodel_is_refused_with_the_problem(
    tmp_path: Path, mlmodel: str, expected: str
) -> None:
    _write(tmp_path / "MLmodel", mlmodel)
    assert expected in _refusal(tmp_path)


GOOD_LOAD = "def load_model(model_file_name='m.pkl'):\n    return 1\n"
GOOD_PREDICT = "def predict(data, model=None):\n    return data\n"


@pytest.mark.parametrize(
    ("score_py", "expected"),
    [
        (
            GOOD_LOAD + "def predict(data:\n    pass\n",
            "score.py line 3: syntax error: '(' was never closed.",
        ),
        (GOOD_LOAD, "score.py defines no top-level function predict;"),
        (GOOD_PREDICT, "score.py defines no top-level function load_model;"),
        (
            GOOD_LOAD + "class Model:\n    def predict(self, data):\n        return data\n",
            "score.py line 4: predict is defined inside another block;",
        ),
        (
            GOOD_LOAD + "async def predict(data):\n    return data\n",
            "score.py line 3: predict is 'async def';",
        ),
        (
            "def load_model(path):\n    return 1\n" + GOOD_PREDICT,
            "score.py line 1: load_model is called with no arguments, so each of its "
            "parameters needs a default value.",
        ),
        (
            GOOD_LOAD + "def predict():\n    return 1\n",
            "score.py line 3: predict must take the request data as its first argument",
        ),
        (
            GOOD_LOAD + "def predict(data, *, scale):\n    return 1\n",
            "score.py line 3: predict has keyword-only parameters without defaults",
        ),
        ("x = '\0'\n", "null bytes"),
    ],
)
def test_broken_score_py_is_refused_naming_problem_and_line(
    tmp_path: Path, score_py: str, expected: str
) -> None:
    _write(tmp_path / "score.py", score_py)
    assert expected in _refusal(tmp_path)


def test_score_py_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _write(
        tmp_path / "score.py",
        f"open({str(marker)!r}, 'w').close()\n" + GOOD_LOAD + GOOD_PREDICT,
    )
    detect(tmp_path, "source 'here'")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("runtime_yaml", "expected"),
    [
        ("MODEL_ARTIFACT_VERSION: [\n", "runtime.yaml is not valid YAML"),
        ("just a string\n", "runtime.yaml must be a YAML mapping of keys to values, it is a str."),
        ("MODEL_DEPLOYMENT: {}\n", "runtime.yaml has no MODEL_ARTIFACT_VERSION"),
        ("MODEL_ARTIFACT_VERSION: '9.9'\n", "MODEL_ARTIFACT_VERSION is '9.9'; berth reads"),
        (
            "MODEL_ARTIFACT_VERSION: '3.0'\nMODEL_DEPLOYMENT: [a]\n",
            "runtime.yaml: MODEL_DEPLOYMENT must be a mapping",
        ),
        (
            "MODEL_ARTIFACT_VERSION: '3.0'\nMODEL_DEPLOYMENT:\n  INFERENCE_CONDA_ENV:\n"
            "    INFERENCE_PYTHON_VERSION: 3.10\n",
            "INFERENCE_PYTHON_VERSION must be a quoted string such as '3.11'; unquoted, YAML "
            "reads it as the number 3.1.",
        ),
        (
            "MODEL_ARTIFACT_VERSION: '3.0'\nMODEL_DEPLOYMENT:\n  INFERENCE_CONDA_ENV:\n"
            "    INFERENCE_PYTHON_VERSION: python3\n",
            "INFERENCE_PYTHON_VERSION is 'python3'",
        ),
    ],
)
def test_broken_runtime_yaml_is_refused(tmp_path: Path, runtime_yaml: str, expected: str) -> None:
    root = _copy("sum_score", tmp_path)
    _write(root / "runtime.yaml", runtime_yaml)
    assert expected in _refusal(root)


def test_unquoted_artifact_version_is_read_as_written(tmp_path: Path) -> None:
    root = _copy("sum_score", tmp_path)
    _write(root / "runtime.yaml", "MODEL_ARTIFACT_VERSION: 3.0\n")
    assert detect(root, "here").details["model_artifact_version"] == "3.0"


def test_one_gguf_file_is_an_open_llm_described_from_its_header(tmp_path: Path) -> None:
    (tmp_path / SMOLLM2_FILE).symlink_to(smollm2_gguf())
    found = detect(tmp_path, "source 'here'")
    assert found.format is ArtifactFormat.GGUF
    details = found.details
    assert (details["weights"], details["architecture"]) == (SMOLLM2_FILE, "llama")
    assert (details["parameter_count"], details["quantization"]) == (134_515_008, "Q4_1")


def test_two_gguf_files_are_refused(tmp_path: Path) -> None:
    for name in ("a.gguf", "b.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
    assert _refusal(tmp_path) == (
        "source 'here' holds 2 .gguf files; a model version is one model: register a folder "
        "holding exactly one, or the .gguf file itself."
    )


def test_a_gguf_file_that_is_not_one_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(b"PK\x03\x04" + bytes(60))
    assert _refusal(tmp_path).startswith(
        "model.gguf in source 'here' is not a GGUF file: it starts with b'PK\\x03\\x04'"
    )
