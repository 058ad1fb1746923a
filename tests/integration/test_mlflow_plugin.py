"""MLflow's deployments client and CLI with berth's own target, ``berth``, against a real server.

``mlflow deployments create-endpoint`` is left out: MLflow 3.17's command hands its
``--endpoint`` to a function that takes ``name``, a TypeError before any target is called
(``create_endpoint`` is tested through the Python client).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import mlflow.deployments
import pytest
from mlflow.deployments import BaseDeploymentClient, PredictionsResponse, get_deploy_client
from mlflow.exceptions import MlflowException

from berth.client import mlflow_plugin
from berth.envs import find_uv
from tests.support.deploy import (
    COLUMNS,
    ECHO,
    FAKES,
    FORMATS,
    ROWS,
    endpoint,
    entity,
    register_model,
    unique,
    wait_ready,
)
from tests.support.servers import BerthServer
from tests.support.trainer import MLFLOW

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
IRIS = REPO / "src" / "berth" / "demo" / "iris_model"
BASE = "/api/2.0/serving-endpoints"
READY = {"ready": "READY", "config_update": "NOT_UPDATING"}


@pytest.fixture
def deployments(server: BerthServer, monkeypatch: pytest.MonkeyPatch) -> BaseDeploymentClient:
    monkeypatch.setenv("BERTH_HOST", server.url)
    monkeypatch.setenv("BERTH_TOKEN", server.token)
    client = get_deploy_client("berth")
    assert client is not None
    return client


@pytest.fixture(scope="module")
def user_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of an MLflow user's venv: MLflow, pandas (``mlflow deployments predict`` reads
    its input with it; berth's own environment has none, test_environments.py checks) and
    berth, installed from this checkout as a user installs it, entry point and all."""
    venv, uv = tmp_path_factory.mktemp("mlflow-user") / "venv", str(find_uv())
    subprocess.run([uv, "venv", "-q", "--python", "3.11", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [uv, "pip", "install", "-q", "--python", str(python), MLFLOW, "pandas", str(REPO)]
    subprocess.run(install, check=True)
    return python


@pytest.fixture
def name(api: httpx.Client) -> Iterator[str]:
    deployment = unique("mlflow")
    yield deployment
    api.delete(f"{BASE}/{deployment}")  # stops replicas left running


def berth_message(api: httpx.Client, path: str) -> str:
    """What berth itself answers a GET of ``path`` that fails."""
    answer = api.get(path)
    assert answer.is_error, answer.text
    return str(answer.json()["message"])


def query(api: httpx.Client, name: str, body: dict[str, Any]) -> Any:
    answer = api.post(f"/serving-endpoints/{name}/invocations", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def served(detail: dict[str, Any]) -> tuple[Any, ...]:
    [one] = detail["config"]["served_entities"]
    return (
        one["entity_name"],
        one["entity_version"],
        one["workload_size"],
        one.get("scale_to_zero_enabled", False),
    )


def test_mlflow_finds_the_berth_target(
    server: BerthServer, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    [found] = [ep for ep in entry_points(group="mlflow.deployments") if ep.name == "berth"]
    assert found.value == "berth.client.mlflow_plugin"
    monkeypatch.delenv("BERTH_HOST", raising=False)
    monkeypatch.setenv("BERTH_TOKEN", server.token)

    named = get_deploy_client(f"berth://127.0.0.1:{server.port}")

    assert isinstance(named, mlflow_plugin.BerthDeploymentClient)
    listed = api.get(BASE).json().get("endpoints", [])
    assert named.list_endpoints() == listed
    with pytest.raises(MlflowException, match="BERTH_HOST") as refused:
        get_deploy_client("berth:/prod")
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_deployment_from_a_folder_through_its_life(
    deployments: BaseDeploymentClient, api: httpx.Client, name: str
) -> None:
    created = deployments.create_deployment(
        name, str(IRIS), config={"workload_size": "Small", "scale_to_zero_enabled": "true"}
    )

    assert (created["name"], created["flavor"]) == (name, "score_py")
    assert created["state"] == READY
    assert served(created) == (name, "1", "Small", True)
    assert name in [found["name"] for found in deployments.list_deployments()]
    assert deployments.get_deployment(name)["id"] == endpoint(api, name)["id"]

    body = FORMATS["dataframe_split"]
    direct = query(api, name, body)
    assert direct["predictions"] == ["setosa", "virginica"]
    answer = deployments.predict(name, body)
    assert isinstance(answer, PredictionsResponse)
    assert answer == direct
    instances = FORMATS["instances"]
    assert deployments.predict(endpoint=name, inputs=instances) == query(api, name, instances)

    # A served entity of endpoint_config naming no model serves the deployment's.
    renamed = {"served_entities": [{"name": "iris", "workload_size": "Medium"}]}
    resized = deployments.update_deployment(name, config={"endpoint_config": json.dumps(renamed)})
    assert resized["state"] == READY
    assert resized["config"]["config_version"] == 2
    assert served(resized) == (name, "1", "Medium", True)
    assert resized["config"]["served_entities"][0]["name"] == "iris"

    moved = deployments.update_deployment(name, model_uri=str(IRIS))
    assert served(moved) == (name, "2", "Medium", True)
    assert deployments.predict(name, body) == direct
    with pytest.raises(MlflowException, match="workload_size: Input should be"):
        deployments.update_deployment(name, str(IRIS), config={"workload_size": "Huge"})

    deployments.delete_deployment(name)
    with pytest.raises(MlflowException) as missing:
        deployments.get_deployment(name)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert missing.value.message == berth_message(api, f"{BASE}/{name}")
    # The registered versions stay, but for the one the refused update registered.
    versions = api.get(f"/api/2.0/models/{name}/versions").json()["model_versions"]
    assert [version["version"] for version in versions] == ["1", "2"]


def test_a_registered_chat_model_deploys_and_streams(
    deployments: BaseDeploymentClient, api: httpx.Client, name: str
) -> None:
    model = register_model(api, FAKES / "chat_score", prefix="chat")

    created = deployments.create_deployment(name, f"models:/{model}/latest")

    assert served(created)[:2] == (model, "1")
    chunks = list(
        deployments.predict_stream(
            name, {"messages": [{"role": "user", "content": "hello from mlflow"}]}
        )
    )
    assert [chunk["object"] for chunk in chunks] == ["chat.completion.chunk"] * 3
    assert "".join(chunk["choices"][0]["delta"]["content"] for chunk in chunks) == (
        "HELLO FROM MLFLOW"
    )
    broken = {"messages": [{"role": "user", "content": "fail midway"}]}
    with pytest.raises(MlflowException, match="the model broke down midway"):
        list(deployments.predict_stream(endpoint=name, inputs=broken))


def test_a_model_that_fails_to_load_fails_its_deployment(
    deployments: BaseDeploymentClient, name: str
) -> None:
    with pytest.raises(MlflowException, match="UPDATE_FAILED") as failed:
        deployments.create_deployment(name, str(FAKES / "failing_load"))

    assert "weights file model.bin is corrupt" in failed.value.message


def test_refusals_carry_what_berth_or_the_plugin_says(
    deployments: BaseDeploymentClient, api: httpx.Client, name: str
) -> None:
    with pytest.raises(MlflowException, match="workload_size: Input should be") as refused:
        deployments.create_deployment(name, str(IRIS), config={"workload_size": "Huge"})
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    # The version registered for the refused endpoint is gone again.
    assert api.get(f"/api/2.0/models/{name}/versions").json()["model_versions"] == []

    missing = unique("nothing")
    with pytest.raises(MlflowException) as absent:
        deployments.create_deployment(name, f"models:/{missing}/1")
    assert absent.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert absent.value.message == berth_message(api, f"/api/2.0/models/{missing}/versions/1")

    invalid: list[tuple[dict[str, Any], str]] = [
        ({"model_uri": "s3://bucket/model"}, "neither models:/NAME/VERSION nor a local path"),
        ({"model_uri": str(IRIS), "config": {"replicas": "2"}}, "Unknown config key.*replicas"),
        ({"model_uri": str(IRIS), "flavor": "sklearn"}, "leave out flavor 'sklearn'"),
        ({"model_uri": str(IRIS), "endpoint": "other"}, "is endpoint .*, not 'other'"),
        ({"model_uri": str(IRIS), "config": {"wait": "maybe"}}, "true or false, not 'maybe'"),
    ]
    for arguments, message in invalid:
        with pytest.raises(MlflowException, match=message) as bad:
            deployments.create_deployment(name, **arguments)
        assert bad.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException, match="does not explain") as unexplained:
        deployments.explain(name, FORMATS["instances"])
    assert unexplained.value.error_code == "NOT_IMPLEMENTED"
    with pytest.raises(MlflowException, match="berth serve"):
        mlflow.deployments.run_local("berth", name, str(IRIS))
    assert api.get(f"{BASE}/{name}").status_code == 404


def test_endpoints_through_the_client(
    deployments: BaseDeploymentClient, api: httpx.Client, name: str
) -> None:
    model = register_model(api, ECHO, prefix="echo")
    payload = {
        "config": {"served_entities": [entity(model, "1")]},
        "tags": [{"key": "team", "value": "ml"}],
    }

    created = deployments.create_endpoint(name, payload)

    assert created["state"]["config_update"] == "IN_PROGRESS"
    assert created["tags"] == payload["tags"]
    wait_ready(api, name)
    assert deployments.get_endpoint(name)["state"] == READY
    assert name in [found["name"] for found in deployments.list_endpoints()]

    config = {"served_entities": [entity(model, "1", workload_size="Medium")]}
    updated = deployments.update_endpoint(name, config)
    assert updated["pending_config"]["config_version"] == 2
    assert served(wait_ready(api, name))[2] == "Medium"

    deployments.delete_endpoint(name)
    with pytest.raises(MlflowException) as deleted:
        deployments.delete_endpoint(name)
    assert deleted.value.message == berth_message(api, f"{BASE}/{name}")


def test_the_mlflow_cli_deploys_to_berth(
    server: BerthServer, api: httpx.Client, name: str, tmp_path: Path, user_python: Path
) -> None:
    def mlflow_cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "MLFLOW_"))}
        env.update(BERTH_HOST=server.url, BERTH_TOKEN=server.token)
        command = [str(user_python), "-m", "mlflow", "deployments", *args, "-t", "berth"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    def ok(*args: str) -> str:
        done = mlflow_cli(*args)
        assert done.returncode == 0, f"mlflow deployments {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    created = ok("create", "--name", name, "-m", str(IRIS), "-C", "workload_size=Small")
    assert created.strip() == f"score_py deployment {name} is created"
    assert served(endpoint(api, name)) == (name, "1", "Small", False)
    assert f"'name': '{name}'" in ok("list")
    assert f"name: {name}\n" in ok("get", "--name", name)

    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([dict(zip(COLUMNS, row, strict=True)) for row in ROWS]))
    predictions = tmp_path / "predictions.json"  # the rows come as a DataFrame
    ok("predict", "--name", name, "--input-path", str(rows), "--output-path", str(predictions))
    expected = query(api, name, FORMATS["dataframe_split"])
    assert json.loads(predictions.read_text()) == expected

    updated = ok("update", "--name", name, "-C", "scale_to_zero_enabled=true", "-C", "wait=false")
    assert updated.strip() == f"Deployment {name} is updated (with flavor score_py)"
    assert served(wait_ready(api, name)) == (name, "1", "Small", True)

    medium = json.dumps([entity(name, "1", workload_size="Medium")])
    ok("update-endpoint", "--endpoint", name, "-C", f"served_entities={medium}")
    assert served(wait_ready(api, name))[2] == "Medium"

    assert ok("delete", "--name", name).strip() == f"Deployment {name} is deleted"
    gone = mlflow_cli("get", "--name", name)
    assert gone.returncode != 0
    assert berth_message(api, f"{BASE}/{name}") in gone.stderr
