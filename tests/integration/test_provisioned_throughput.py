"""Provisioned throughput as Databricks clients drive it, against a real server and a real
engine: the chunk of an open LLM measured on this host (once, then stored), endpoints sized in
multiples of it by the databricks-sdk, model units on the pt routes, other models refused, and
`berth models calibrate` measuring again.

One server and one registered GGUF for the module; the measured rounds are kept short
(``BERTH_CALIBRATION__MEASURE_S``) so each calibration costs a load, a warm-up and one round.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service.serving import (
    EndpointCoreConfigInput,
    EndpointStateReady,
    PtEndpointCoreConfig,
    PtServedModel,
    ServedEntityInput,
)

from tests.support.cli import Cli
from tests.support.deploy import ECHO, FAKES, endpoint, register, register_model, unique
from tests.support.llm import smollm2_gguf
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

WAIT = timedelta(minutes=3)
CALIBRATING_S = 600.0
"""A first optimization-info call measures the chunk: on a busy machine, a minute or more."""
OPTIMIZATION_INFO = "/api/2.0/serving-endpoints/get-model-optimization-info"


@pytest.fixture(scope="module")
def server(make_server: Callable[..., BerthServer]) -> BerthServer:
    return make_server(BERTH_CALIBRATION__MEASURE_S="1")


@pytest.fixture(scope="module")
def api(server: BerthServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        client.timeout = httpx.Timeout(CALIBRATING_S)
        yield client


@pytest.fixture(scope="module")
def llm(server: BerthServer, api: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model with two versions of SmolLM2's weights."""
    folder = tmp_path_factory.mktemp("smollm2")
    os.link(smollm2_gguf(), folder / smollm2_gguf().name)
    name = unique("smol")
    assert register(api, name, folder) == "1"
    assert register(api, name, folder) == "2"
    return name


@pytest.fixture(scope="module")
def info(server: BerthServer, llm: str) -> dict[str, Any]:
    """Version 1's optimization info, its chunk measured for these first two calls at once,
    which share the one run."""

    def ask() -> httpx.Response:
        with server.client() as client:
            return client.get(f"{OPTIMIZATION_INFO}/{llm}/1", timeout=CALIBRATING_S)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: ask(), range(2)))
    for answer in answers:
        assert answer.status_code == 200, answer.text
    first, second = (answer.json() for answer in answers)
    assert first == second  # one calibration, not two
    return first


@pytest.fixture(scope="module")
def chunk(info: dict[str, Any]) -> int:
    size: int = info["throughput_chunk_size"]
    return size


@pytest.fixture
def workspace(server: BerthServer, monkeypatch: pytest.MonkeyPatch) -> WorkspaceClient:
    for variable in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CONFIG_FILE", "DATABRICKS_CLIENT_ID"):
        monkeypatch.delenv(variable, raising=False)
    return WorkspaceClient(host=server.url, token=server.token)


@pytest.fixture
def name(api: httpx.Client) -> Iterator[str]:
    endpoint_name = unique("pt")
    yield endpoint_name
    api.delete(f"/api/2.0/serving-endpoints/{endpoint_name}")  # its replicas stop


def test_an_open_llm_is_optimizable_with_a_chunk_measured_here_once(
    api: httpx.Client, workspace: WorkspaceClient, llm: str, info: dict[str, Any]
) -> None:
    assert (info["optimizable"], info["model_type"]) == (True, "llama")
    chunk = info["throughput_chunk_size"]
    assert chunk > 0 and (chunk % 5 == 0 or chunk < 5)
    calibration = info["calibration"]
    method = calibration["method"]
    assert (method["slots"], method["max_tokens"]) == (4, 64)
    assert method["engine"].startswith("xllamacpp==")
    assert method["requests"] >= 4 and method["completion_tokens"] == 64 * method["requests"]
    assert chunk <= method["tokens_per_s"] < chunk + 5  # floored to a round figure
    assert calibration["fingerprint"].endswith(f"logical CPUs; {method['engine']}")

    # Asked again, by the SDK as notebooks ask: the stored chunk, not a new measure.
    again = workspace.api_client.do("GET", f"{OPTIMIZATION_INFO}/{llm}/1")
    assert isinstance(again, dict)
    assert again["calibration"]["calibrated_at"] == calibration["calibrated_at"]
    stored = api.get(f"/api/2.0/models/{llm}/versions/1/calibration").json()
    assert stored["state"] == "DONE"
    assert stored["calibration"] == calibration


def test_models_that_are_not_open_llms_are_not_optimizable_nor_sized_in_throughput(
    api: httpx.Client,
) -> None:
    scored = register_model(api, ECHO, FAKES / "sum_mlflow", prefix="plain")
    for version in ("1", "2"):  # a score.py model, an MLflow model
        answer = api.get(f"{OPTIMIZATION_INFO}/{scored}/{version}")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"optimizable": False}
    entity = {"entity_name": scored, "entity_version": "1"}
    entity |= {"min_provisioned_throughput": 0, "max_provisioned_throughput": 100}
    config = {"served_entities": [entity]}
    refused = api.post("/api/2.0/serving-endpoints", json={"name": unique("pt"), "config": config})
    assert refused.status_code == 400
    assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "applies to open LLMs" in refused.json()["message"]
    missing = api.get(f"{OPTIMIZATION_INFO}/{scored}/9")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_the_sdk_sizes_an_endpoint_in_multiples_of_the_chunk(
    api: httpx.Client, workspace: WorkspaceClient, llm: str, chunk: int, name: str
) -> None:
    def entity(low: int, high: int) -> ServedEntityInput:
        return ServedEntityInput(
            entity_name=llm,
            entity_version="1",
            min_provisioned_throughput=low,
            max_provisioned_throughput=high,
        )

    with pytest.raises(InvalidParameterValue, match=f"a multiple of {chunk} tokens/s"):
        workspace.serving_endpoints.create(
            name,
            config=EndpointCoreConfigInput(
                name=name, served_entities=[entity(chunk, 2 * chunk + 1)]
            ),
        )
    created = workspace.serving_endpoints.create_and_wait(
        name,
        config=EndpointCoreConfigInput(name=name, served_entities=[entity(2 * chunk, 3 * chunk)]),
        timeout=WAIT,
    )
    assert created.state is not None and created.state.ready == EndpointStateReady.READY
    assert created.config is not None and created.config.served_entities is not None
    served = created.config.served_entities[0]
    assert (served.min_provisioned_throughput, served.max_provisioned_throughput) == (
        2 * chunk,
        3 * chunk,
    )
    [got] = endpoint(api, name)["config"]["served_entities"]
    assert (got["current_replicas"], got["desired_replicas"]) == (2, 2)
    band = got["provisioned_throughput"]
    assert (band["chunk_size"], band["min_throughput"], band["max_throughput"]) == (
        chunk,
        2 * chunk,
        3 * chunk,
    )
    assert band["current_band"] == 2 * chunk


def test_the_pt_routes_size_endpoints_in_model_units(
    api: httpx.Client, workspace: WorkspaceClient, llm: str, chunk: int, name: str
) -> None:
    def units(count: int, burst: bool | None) -> PtEndpointCoreConfig:
        served = PtServedModel(
            entity_name=llm,
            entity_version="1",
            provisioned_model_units=count,
            burst_scaling_enabled=burst,
        )
        return PtEndpointCoreConfig(served_entities=[served])

    created = workspace.serving_endpoints.create_provisioned_throughput_endpoint(
        name, units(1, burst=False)
    ).result(timeout=WAIT)
    assert created.state is not None and created.state.ready == EndpointStateReady.READY
    [got] = endpoint(api, name)["config"]["served_entities"]
    assert (got["provisioned_model_units"], got["current_replicas"]) == (1, 1)
    band = got["provisioned_throughput"]
    assert (band["min_throughput"], band["max_throughput"]) == (chunk, chunk)

    updated = workspace.serving_endpoints.update_provisioned_throughput_endpoint_config(
        name,
        units(2, burst=None),  # burst scaling is on unless turned off
    ).result(timeout=WAIT)
    assert updated.config is not None and updated.config.config_version == 2
    [got] = endpoint(api, name)["config"]["served_entities"]
    assert (got["provisioned_model_units"], got["current_replicas"]) == (2, 2)
    band = got["provisioned_throughput"]
    assert (band["min_throughput"], band["max_throughput"]) == (2 * chunk, 4 * chunk)

    zero = api.put(
        f"/api/2.0/serving-endpoints/pt/{name}/config",
        json={"config": {"served_entities": [{"entity_name": llm, "provisioned_model_units": 0}]}},
    )
    assert zero.status_code == 400 and "provisioned_model_units" in zero.json()["message"]
    assert endpoint(api, name)["config"]["config_version"] == 2  # still serving


def test_a_version_never_calibrated_here_has_no_calibration_to_show(
    api: httpx.Client, llm: str
) -> None:
    answer = api.get(f"/api/2.0/models/{llm}/versions/2/calibration")
    assert answer.status_code == 404
    assert "has not been calibrated on this host" in answer.json()["message"]


def test_berth_models_calibrate_measures_again_and_endpoints_get_shows_the_band(
    server: BerthServer, api: httpx.Client, llm: str, info: dict[str, Any], name: str
) -> None:
    """Last: measuring again may move the chunk the tests above sized endpoints in."""
    cli = Cli(server.url, server.token)
    out = cli.ok("models", "calibrate", llm, "1")
    again = api.get(f"{OPTIMIZATION_INFO}/{llm}/1").json()
    assert again["calibration"]["calibrated_at"] > info["calibration"]["calibrated_at"]
    chunk = again["throughput_chunk_size"]
    assert f"{llm} version 1: {chunk} tokens/s per replica (one model unit)" in out
    assert "Calibration took" in out

    entity = {"entity_name": llm, "entity_version": "1"}
    entity |= {"min_provisioned_throughput": 0, "max_provisioned_throughput": chunk}
    created = api.post(
        "/api/2.0/serving-endpoints",
        json={"name": name, "config": {"served_entities": [entity]}},
    )
    assert created.status_code == 200, created.text
    shown = cli.ok("endpoints", "get", name)
    assert f"throughput 0-{chunk} tokens/s" in shown
    assert "Provisioned throughput (" in shown
    assert f"{chunk} tokens/s per replica" in shown
