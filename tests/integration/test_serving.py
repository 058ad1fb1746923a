"""Deployed models answer queries through the gateway: formats, errors, clients, splits."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.serving import EndpointCoreConfigInput, ServedEntityInput

from berth.cli.demo import DEMO_ARTIFACT
from tests.support.deploy import (
    FAKES,
    endpoint,
    entity,
    register,
    update_under_load,
    versioned_artifact,
    wait_ready,
)
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
FORMATS = {
    "dataframe_split": {"dataframe_split": {"columns": COLUMNS, "data": ROWS}},
    "dataframe_records": {"dataframe_records": [dict(zip(COLUMNS, r, strict=True)) for r in ROWS]},
    "instances": {"instances": [dict(zip(COLUMNS, r, strict=True)) for r in ROWS]},
    "inputs": {"inputs": {c: [r[i] for r in ROWS] for i, c in enumerate(COLUMNS)}},
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def deploy(api: httpx.Client, name: str, model: str, version: str, **extra: object) -> None:
    created = api.post(
        "/api/2.0/serving-endpoints",
        json={"name": name, "config": {"served_entities": [entity(model, version, **extra)]}},
    )
    assert created.status_code == 200, created.text
    wait_ready(api, name)


@pytest.fixture
def iris(api: httpx.Client) -> str:
    name = unique("iris")
    deploy(api, name, name, register(api, name, DEMO_ARTIFACT))
    return name


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_score_model_answers_every_input_format(api: httpx.Client, iris: str, fmt: str) -> None:
    answer = api.post(f"/serving-endpoints/{iris}/invocations", json=FORMATS[fmt])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": ["setosa", "virginica"]}
    assert answer.headers["served-model-name"] == f"{iris}-1"
    assert float(answer.headers["x-berth-overhead-ms"]) >= 0


def test_bad_queries_get_clear_errors_and_the_replica_lives_on(
    api: httpx.Client, iris: str
) -> None:
    malformed = api.post(
        f"/serving-endpoints/{iris}/invocations",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["error_code"] == "BAD_REQUEST"
    raised = api.post(f"/serving-endpoints/{iris}/invocations", json={"instances": [[1, 2]]})
    assert raised.status_code == 400
    assert "each row needs 4 features" in raised.json()["message"]
    again = api.post(f"/serving-endpoints/{iris}/predict", json=FORMATS["instances"])
    assert again.status_code == 200 and again.json()["predictions"][0] == "setosa"


def test_unknown_endpoint_and_missing_token(api: httpx.Client, server: BerthServer) -> None:
    missing = api.post("/serving-endpoints/no-such-endpoint/invocations", json={"instances": []})
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    anonymous = httpx.post(f"{server.url}/serving-endpoints/x/invocations", json={})
    assert anonymous.status_code == 401


def test_databricks_sdk_creates_queries_and_updates(
    api: httpx.Client, server: BerthServer, tmp_path: Path
) -> None:
    name = unique("sdk")
    first = register(api, name, versioned_artifact(tmp_path, "1"))
    second = register(api, name, versioned_artifact(tmp_path, "2"))
    w = WorkspaceClient(host=server.url, token=server.token)
    created = w.serving_endpoints.create_and_wait(
        name,
        config=EndpointCoreConfigInput(
            name=name,
            served_entities=[ServedEntityInput(entity_name=name, entity_version=first)],
        ),
    )
    assert created.state is not None and created.state.ready is not None
    assert created.state.ready.value == "READY"
    answer = w.serving_endpoints.query(name, instances=[[1, 2]])
    assert answer.served_model_name == f"{name}-{first}"
    updated = w.serving_endpoints.update_config_and_wait(
        name, served_entities=[ServedEntityInput(entity_name=name, entity_version=second)]
    )
    assert updated.config is not None and updated.config.config_version == 2
    raw = api.post(f"/serving-endpoints/{name}/invocations", json={"instances": [[1, 2]]})
    assert raw.json()["version"] == "2"


def test_mlflow_deployments_client_predicts(
    api: httpx.Client, server: BerthServer, iris: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.deployments import get_deploy_client

    monkeypatch.setenv("DATABRICKS_HOST", server.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", server.token)
    monkeypatch.delenv("DATABRICKS_CONFIG_PROFILE", raising=False)
    client = get_deploy_client("databricks")
    answer = client.predict(endpoint=iris, inputs=FORMATS["dataframe_records"])
    assert answer["predictions"] == ["setosa", "virginica"]


def test_failed_update_keeps_the_old_version_serving(
    api: httpx.Client, server: BerthServer, tmp_path: Path
) -> None:
    name = unique("fail")
    good = register(api, name, versioned_artifact(tmp_path, "1"))
    bad = register(api, name, FAKES / "failing_load")
    deploy(api, name, name, good)
    settled, load = update_under_load(api, server.url, server.token, name, bad)
    assert settled["state"]["config_update"] == "UPDATE_FAILED"
    pending = settled["pending_config"]["served_entities"][0]["state"]
    assert pending["deployment"] == "DEPLOYMENT_FAILED"
    assert "model.bin is corrupt" in pending["deployment_state_message"]
    assert settled["config"]["config_version"] == 1
    assert load.failures == []
    assert set(load.versions) == {"1"} and load.total > 0
    events = api.get(f"/api/2.0/serving-endpoints/{name}/events").json()["events"]
    assert any("failed" in e["message"] and "keeps serving" in e["message"] for e in events)


def test_traffic_split_is_followed(api: httpx.Client, tmp_path: Path) -> None:
    name = unique("split")
    v1 = register(api, name, versioned_artifact(tmp_path, "1"))
    v2 = register(api, name, versioned_artifact(tmp_path, "2"))
    config = {
        "served_entities": [entity(name, v1), entity(name, v2)],
        "traffic_config": {
            "routes": [
                {"served_entity_name": f"{name}-{v1}", "traffic_percentage": 70},
                {"served_entity_name": f"{name}-{v2}", "traffic_percentage": 30},
            ]
        },
    }
    created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert created.status_code == 200, created.text
    wait_ready(api, name)
    served = [
        api.post(f"/serving-endpoints/{name}/invocations", json={"x": 1}).json()["version"]
        for _ in range(1000)
    ]
    share = served.count("1") / len(served)
    assert 0.65 <= share <= 0.75, share


def test_an_update_in_progress_can_be_cancelled(api: httpx.Client, tmp_path: Path) -> None:
    name = unique("cancel")
    v1 = register(api, name, versioned_artifact(tmp_path, "1"))
    slow = register(api, name, FAKES / "slow_load")
    deploy(api, name, name, v1)
    put = api.put(
        f"/api/2.0/serving-endpoints/{name}/config", json={"served_entities": [entity(name, slow)]}
    )
    assert put.status_code == 200
    cancelled = api.post(f"/api/2.0/serving-endpoints/{name}/config/cancel")
    assert cancelled.status_code == 200, cancelled.text
    state = endpoint(api, name)["state"]
    assert state["config_update"] == "UPDATE_CANCELED"
    answer = api.post(f"/serving-endpoints/{name}/invocations", json={"x": 1})
    assert answer.json()["version"] == "1"
    again = api.post(f"/api/2.0/serving-endpoints/{name}/config/cancel")
    assert again.status_code == 409


def test_logs_show_what_the_replicas_printed(api: httpx.Client, iris: str) -> None:
    answer = api.get(f"/api/2.0/serving-endpoints/{iris}/served-models/{iris}-1/logs")
    assert answer.status_code == 200, answer.text
    logs = answer.json()["logs"]
    assert "model loaded in" in logs and "replica" in logs
    missing = api.get(f"/api/2.0/serving-endpoints/{iris}/served-models/nope/logs")
    assert missing.status_code == 404
    assert f"{iris}-1" in missing.json()["message"]


def test_bodies_nested_too_deeply_or_with_huge_numbers_are_400_everywhere(
    api: httpx.Client, iris: str
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_stream = b'{"stream": true, "x": ' + deep + b"}"
    huge = b'{"inputs": [1' + b"0" * 5000 + b"]}"
    headers = {"content-type": "application/json"}
    for path in (
        f"/serving-endpoints/{iris}/invocations",
        "/serving-endpoints/chat/completions",
        "/api/2.0/serving-endpoints",
        "/api/2.0/secrets/scopes/create",
    ):
        for body in (deep, deep_stream, huge):
            answer = api.post(path, content=body, headers=headers)
            assert answer.status_code == 400, (path, body[:30], answer.text[:200])
            assert answer.json()["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
