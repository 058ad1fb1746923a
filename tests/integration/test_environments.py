"""Each model version runs in the environment its artifact asks for, built by uv and cached."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from berth.envs import OWN_ENVIRONMENT
from tests.support.deploy import (
    FAKES,
    FORMATS,
    endpoint,
    entity,
    register,
    update_under_load,
    versioned_artifact,
    wait_ready,
)
from tests.support.servers import BerthServer
from tests.support.trainer import SKLEARN

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(api: httpx.Client, name: str, model: str, version: str) -> dict[str, object]:
    answer = api.post(
        "/api/2.0/serving-endpoints",
        json={"name": name, "config": {"served_entities": [entity(model, version)]}},
    )
    assert answer.status_code == 200, answer.text
    return wait_ready(api, name, timeout=240)


@pytest.fixture(scope="session")
def sklearn_model(
    tmp_path_factory: pytest.TempPathFactory, trainer_python: Path
) -> tuple[Path, list[int]]:
    """An MLflow scikit-learn model saved in a venv of its own with pinned versions."""
    root = tmp_path_factory.mktemp("sklearn")
    script = FAKES.parent / "make_sklearn_model.py"
    subprocess.run([trainer_python, str(script), str(root)], check=True, capture_output=True)
    return root / "model", json.loads((root / "expected.json").read_text())


def test_berth_itself_needs_neither_scikit_learn_nor_mlflow_models() -> None:
    assert importlib.util.find_spec("sklearn") is None
    assert importlib.util.find_spec("pandas") is None


def test_sklearn_model_runs_in_its_own_environment(
    api: httpx.Client, server: BerthServer, sklearn_model: tuple[Path, list[int]]
) -> None:
    path, expected = sklearn_model
    name = unique("sk")
    version = register(api, name, path)
    details = api.get(f"/api/2.0/models/{name}/versions/{version}").json()["model_version"]
    environment = details["details"]["environment"]
    assert SKLEARN in environment["spec"]["requirements"]
    create(api, name, name, version)
    for body in FORMATS.values():
        answer = api.post(f"/serving-endpoints/{name}/invocations", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": expected}
    (state,) = (server.home / "replicas").glob(f"{name}.*/state.json")
    python = json.loads(state.read_text())["spec"]["python"]
    assert python.startswith(str(server.home / "envs" / environment["hash"]))
    logs = api.get(f"/api/2.0/serving-endpoints/{name}/served-models/{name}-{version}/build-logs")
    assert "scikit-learn" in logs.json()["logs"]

    listed = api.get("/api/2.0/berth/envs").json()["environments"]
    (mine,) = [e for e in listed if e["hash"] == environment["hash"]]
    assert mine["in_use"] and f"{name}/{version}" in mine["model_versions"]
    assert mine["size_bytes"] > 10_000_000
    kept = api.post("/api/2.0/berth/envs/prune").json()["removed"]
    assert environment["hash"] not in [e["hash"] for e in kept]
    assert (server.home / "envs" / environment["hash"]).is_dir()


def test_a_pinned_package_is_seen_at_its_pinned_version(api: httpx.Client) -> None:
    name = unique("pin")
    create(api, name, name, register(api, name, FAKES / "pinned"))
    answer = api.post(f"/serving-endpoints/{name}/invocations", json={}).json()
    assert answer == {"packaging": "21.3", "fastapi_importable": False}


def test_a_missing_requirement_fails_the_update_and_the_old_version_serves(
    api: httpx.Client, server: BerthServer, tmp_path: Path
) -> None:
    name = unique("dep")
    good = register(api, name, versioned_artifact(tmp_path, "1"))
    broken = register(api, name, FAKES / "missing_dep")
    create(api, name, name, good)
    settled, load = update_under_load(api, server.url, server.token, name, broken, timeout=120)
    assert settled["state"]["config_update"] == "UPDATE_FAILED"
    state = settled["pending_config"]["served_entities"][0]["state"]
    assert state["deployment"] == "DEPLOYMENT_FAILED"
    assert "berth-no-such-package-xyz" in state["deployment_state_message"]
    logs = api.get(f"/api/2.0/serving-endpoints/{name}/served-models/{name}-{broken}/build-logs")
    assert "berth-no-such-package-xyz" in logs.json()["logs"]
    assert load.failures == [] and set(load.versions) == {"1"} and load.total > 0
    assert endpoint(api, name)["config"]["config_version"] == 1


def test_an_environment_berth_cannot_build_is_refused_at_registration(
    api: httpx.Client, tmp_path: Path
) -> None:
    artifact = tmp_path / "conda-only"
    artifact.mkdir()
    (artifact / "score.py").write_text(
        "def load_model():\n    return 1\n\n\ndef predict(data, model=None):\n    return data\n"
    )
    (artifact / "conda.yaml").write_text(
        "dependencies:\n  - python=3.11\n  - cudatoolkit=11.8\n  - pip\n"
    )
    name = unique("conda")
    assert api.post("/api/2.0/models", json={"name": name}).status_code == 200
    answer = api.post(f"/api/2.0/models/{name}/versions", json={"source": str(artifact)})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "cudatoolkit" in answer.json()["message"]
    assert api.get(f"/api/2.0/models/{name}/versions").json()["model_versions"] == []


def test_a_model_without_a_spec_runs_in_berths_environment(api: httpx.Client) -> None:
    name = unique("own")
    version = register(api, name, FAKES / "echo")
    details = api.get(f"/api/2.0/models/{name}/versions/{version}").json()["model_version"]
    assert details["details"]["environment"] == {"hash": None, "summary": OWN_ENVIRONMENT}
    create(api, name, name, version)
    logs = api.get(f"/api/2.0/serving-endpoints/{name}/served-models/{name}-{version}/build-logs")
    assert logs.json()["logs"] == OWN_ENVIRONMENT


def test_envs_cli_lists_the_cache(server: BerthServer, api: httpx.Client) -> None:
    name = unique("cli-env")
    create(api, name, name, register(api, name, FAKES / "pinned"))
    env = {"BERTH_HOST": server.url, "BERTH_TOKEN": server.token, "PATH": os.environ["PATH"]}
    done = subprocess.run(
        [sys.executable, "-m", "berth", "envs", "list"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "packaging==21.3" in done.stdout and f"{name}/1" in done.stdout
