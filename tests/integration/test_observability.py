"""Metrics count what was sent and time every stage; inference tables capture every request
of a captured endpoint to Parquet, read back through the API and with pyarrow; every answer
carries a request id."""

from __future__ import annotations

import json
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pyarrow.dataset as ds  # type: ignore[import-untyped]
import pytest

from tests.support.cli import Cli
from tests.support.deploy import ECHO, FAKES, deploy, entity, register, unique
from tests.support.identity import make_user
from tests.support.metrics import samples, value
from tests.support.net import wait_until
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


def test_metrics_count_requests_and_time_every_stage(
    api: httpx.Client, server: BerthServer
) -> None:
    name = deploy(api, ECHO)
    for i in range(25):
        assert api.post(f"/serving-endpoints/{name}/invocations", json={"i": i}).is_success
    for _ in range(2):
        bad = api.post(
            f"/serving-endpoints/{name}/invocations",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert bad.status_code == 400
    chat = deploy(api, FAKES / "chat_score")
    streamed = api.post(
        f"/serving-endpoints/{chat}/invocations",
        json={"messages": [{"role": "user", "content": "a b c"}], "stream": True},
    )
    assert streamed.text.endswith("data: [DONE]\n\n")
    said = api.post(
        f"/serving-endpoints/{chat}/invocations",
        json={"messages": [{"role": "user", "content": "four words right here"}]},
    )
    assert said.json()["usage"]["completion_tokens"] == 4

    answer = api.get(f"/api/2.0/serving-endpoints/{name}/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    found = samples(answer.text)
    assert {labels for (_, labels) in found} and all(
        dict(labels).get("endpoint", name) == name for (_, labels) in found
    ), "one endpoint's metrics hold only its own samples"
    entity_name = f"{name}-1"
    ok = dict(endpoint=name, served_entity=entity_name)
    assert value(found, "berth_requests_total", **ok, status="200") == 25
    assert value(found, "berth_requests_total", **ok, status="400") == 2
    assert value(found, "berth_request_duration_seconds_count", endpoint=name) == 27
    for stage in ("auth", "rate_limit", "queue_wait", "upstream"):
        count = value(found, "berth_request_stage_seconds_count", endpoint=name, stage=stage)
        assert count == 27, stage
    assert value(found, "berth_replicas", **ok, state="READY") == 1
    assert value(found, "berth_model_latency_seconds_count", **ok) >= 25
    assert value(found, "berth_in_flight_requests", endpoint=name) == 0

    everything = samples(api.get("/metrics").text)
    chat_stage = dict(endpoint=chat, stage="streaming")
    assert value(everything, "berth_request_stage_seconds_count", **chat_stage) == 1
    # The streamed answer reported no usage (the model's chunks carry none): only 4 counted.
    chat_out = dict(endpoint=chat, served_entity=f"{chat}-1", direction="out")
    assert value(everything, "berth_tokens_total", **chat_out) == 4
    assert value(everything, "berth_requests_total", **ok, status="200") == 25
    assert any(n == "berth_environment_build_seconds_count" for n, _ in everything)

    user = unique("viewer")
    _, client = make_user(api, server, user)
    with client:
        assert client.get("/metrics").status_code == 403
        assert client.get(f"/api/2.0/serving-endpoints/{name}/metrics").status_code == 403


def test_an_inference_table_captures_every_request_and_reads_back(
    api: httpx.Client, server: BerthServer
) -> None:
    table = {"inference_table_config": {"enabled": True}}
    name = deploy(api, ECHO, ai_gateway=table)

    def send(i: int) -> httpx.Response:
        body = {"inputs": [i], "client_request_id": f"client-{i}"}
        return api.post(f"/serving-endpoints/{name}/invocations", json=body)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(1000)))
    assert all(a.status_code == 200 for a in answers)
    ids = {a.headers["x-request-id"] for a in answers}
    assert len(ids) == 1000

    def everything() -> list[dict[str, Any]]:
        found = api.get(f"/api/2.0/serving-endpoints/{name}/payloads", params={"limit": 5000})
        assert found.status_code == 200, found.text
        rows: list[dict[str, Any]] = found.json()["payloads"]
        return rows

    wait_until(lambda: len(everything()) == 1000, timeout=60, what="1,000 captured rows")
    rows = everything()
    assert {row["request_id"] for row in rows} == ids
    for row in rows:
        sent = json.loads(row["request"])
        assert row["client_request_id"] == f"client-{sent['inputs'][0]}"
        assert json.loads(row["response"]) == {"predictions": sent}
        assert row["status_code"] == 200 and row["served_entity"] == f"{name}-1"
        assert row["principal"] == "admin" and row["latency_ms"] > 0
    endpoint_id = api.get(f"/api/2.0/serving-endpoints/{name}").json()["id"]
    table = server.home / "inference" / endpoint_id  # by id: a later namesake starts afresh
    table_rows = ds.dataset(table, partitioning="hive").to_table()
    assert table_rows.num_rows == 1000

    broken = api.post(
        f"/serving-endpoints/{name}/invocations",
        content=b"{oops",
        headers={"content-type": "application/json", "x-request-id": "mine-1"},
    )
    assert broken.status_code == 400 and broken.headers["x-request-id"] == "mine-1"
    wait_until(lambda: len(everything()) == 1001, timeout=60, what="the failed request's row")
    (failed,) = [row for row in everything() if row["request_id"] == "mine-1"]
    assert failed["status_code"] == 400 and "Malformed JSON" in failed["response"]

    shown = Cli(server.url, server.token).json("payloads", name, "--limit", "5", "--since", "1h")
    assert len(shown) == 5 and shown[0]["request_id"] == "mine-1"


def test_sampling_keeps_the_predicted_share(api: httpx.Client) -> None:
    table = {"inference_table_config": {"enabled": True, "sampling_fraction": 0.25}}
    name = deploy(api, ECHO, ai_gateway=table)
    ids = [f"req-{i}" for i in range(200)]
    for request_id in ids:
        answer = api.post(
            f"/serving-endpoints/{name}/invocations", json={}, headers={"x-request-id": request_id}
        )
        assert answer.headers["x-request-id"] == request_id
    kept = {i for i in ids if zlib.crc32(i.encode()) % 10_000 < 2_500}
    assert 20 < len(kept) < 80

    def captured() -> set[str]:
        rows = api.get(f"/api/2.0/serving-endpoints/{name}/payloads", params={"limit": 500})
        return {row["request_id"] for row in rows.json()["payloads"]}

    wait_until(lambda: captured() == kept, timeout=60, what="the sampled rows")
    schema = api.get("/api/2.0/berth/inference-tables/schema").json()["columns"]
    assert {"request_id", "request", "response", "status_code"} <= {c["name"] for c in schema}


def test_each_endpoint_documents_its_input_as_openapi(api: httpx.Client) -> None:
    model = unique("sum")
    register(api, model, FAKES / "sum_mlflow")
    config = {"served_entities": [entity(model, "1")]}
    assert api.post("/api/2.0/serving-endpoints", json={"name": model, "config": config}).is_success
    doc = api.get(f"/api/2.0/serving-endpoints/{model}/openapi").json()
    assert doc["openapi"].startswith("3.") and doc["info"]["version"] in ("0", "1")
    post = doc["paths"][f"/serving-endpoints/{model}/invocations"]["post"]
    formats = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    by_key = {next(iter(f["required"])): f["properties"] for f in formats}
    assert set(by_key) == {"dataframe_split", "dataframe_records", "instances", "inputs"}
    assert by_key["dataframe_split"]["dataframe_split"]["properties"]["columns"]["items"] == {
        "enum": ["a", "b"]
    }
    row = by_key["instances"]["instances"]["items"]
    assert row["properties"] == {"a": {"type": "number"}, "b": {"type": "number"}}
    assert row["required"] == ["a", "b"]
    assert api.delete(f"/api/2.0/serving-endpoints/{model}").is_success

    plain = deploy(api, ECHO)
    doc = api.get(f"/api/2.0/serving-endpoints/{plain}/openapi").json()
    body = doc["paths"][f"/serving-endpoints/{plain}/invocations"]["post"]["requestBody"]
    assert "Any JSON" in body["content"]["application/json"]["schema"]["description"]
    assert api.get("/api/2.0/serving-endpoints/nope/openapi").status_code == 404


def test_access_and_predict_logs_switch_on_a_running_endpoint(
    api: httpx.Client, server: BerthServer
) -> None:
    name = deploy(api, ECHO)
    (state,) = (server.home / "replicas").glob(f"{name}.*/state.json")
    pid = json.loads(state.read_text())["pid"]

    def query(request_id: str) -> None:
        answer = api.post(
            f"/serving-endpoints/{name}/invocations", json={}, headers={"x-request-id": request_id}
        )
        assert answer.status_code == 200 and answer.headers["x-request-id"] == request_id

    def access_ids() -> list[str]:
        text = api.get(f"/api/2.0/serving-endpoints/{name}/access-logs").json()["logs"]
        return [json.loads(line)["request_id"] for line in text.splitlines()]

    def predict_ids() -> list[str]:
        text = api.get(f"/api/2.0/serving-endpoints/{name}/served-models/{name}-1/logs").text
        logs = json.loads(text)["logs"]
        return [
            json.loads(line[line.index("{") :])["request_id"]
            for line in logs.splitlines()
            if '"kind":"predict"' in line
        ]

    probes = iter(range(1000))

    def probe() -> str:
        """A query with an id of its own, so each check looks for a fresh line."""
        request_id = f"probe-{next(probes)}"
        query(request_id)
        return request_id

    def logged(request_id: str) -> bool:
        return request_id in access_ids()

    query("before-on")
    both = {"access_log": True, "predict_log": True}
    assert api.put(f"/api/2.0/serving-endpoints/{name}/logging", json=both).json() == both
    assert api.get(f"/api/2.0/serving-endpoints/{name}").json()["log_config"] == both
    wait_until(lambda: logged(probe()), timeout=30, what="the access log to switch on")
    query("logged-1")
    assert access_ids()[-1] == "logged-1" and "before-on" not in access_ids()
    wait_until(lambda: "logged-1" in predict_ids(), timeout=30, what="the predict log line")
    line = json.loads(
        api.get(f"/api/2.0/serving-endpoints/{name}/access-logs").json()["logs"].splitlines()[-1]
    )
    assert line["status"] == 200 and line["principal"] == "admin" and line["latency_ms"] > 0

    off = {"access_log": False, "predict_log": False}
    assert api.put(f"/api/2.0/serving-endpoints/{name}/logging", json=off).is_success
    wait_until(lambda: not logged(probe()), timeout=30, what="the access log to switch off")
    query("after-off")
    assert "after-off" not in access_ids() and "after-off" not in predict_ids()
    (state,) = (server.home / "replicas").glob(f"{name}.*/state.json")
    assert json.loads(state.read_text())["pid"] == pid, "no replica was restarted"
