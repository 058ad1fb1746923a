"""Custom containers served as processes: a model server of the test's own (the standard
library's ``http.server``, told its port and routes by Vertex's variables) deployed behind a
real berth, its probes deciding when and whether it gets traffic."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.containers import SERVER_PY, SPEC
from tests.support.deploy import endpoint, entity, unique, wait_ready, wait_settled
from tests.support.load import Load
from tests.support.net import wait_until
from tests.support.servers import FAST_SCALING, BerthServer

pytestmark = pytest.mark.integration

PLAIN = {"content-type": "text/plain"}
FAST_PROBE = {"period_seconds": 1, "failure_threshold": 1, "success_threshold": 1}


@pytest.fixture(scope="module")
def server(make_server: Callable[..., BerthServer]) -> BerthServer:
    return make_server(
        **FAST_SCALING,
        BERTH_REPLICAS__PROBE_PERIOD_S="0.2",
        BERTH_REPLICAS__PROBE_TIMEOUT_S="2",
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "server.py").write_text(SERVER_PY)
    return tmp_path


def _register(api: httpx.Client, name: str, folder: Path, **spec: Any) -> str:
    created = api.post("/api/2.0/models", json={"name": name})
    assert created.status_code in (200, 409), created.text
    body = {"source": str(folder), "container_spec": {**SPEC, **spec}}
    answer = api.post(f"/api/2.0/models/{name}/versions", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["model_version"]["version"])


def _create(api: httpx.Client, name: str, version: str, **extra: Any) -> None:
    served = entity(name, version, **extra)
    if "max_provisioned_concurrency" in extra:
        del served["workload_size"]
    config = {"served_entities": [served]}
    created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert created.status_code == 200, created.text


def _predict(api: httpx.Client, name: str, **parameters: Any) -> httpx.Response:
    body = {"instances": [[1, 2], [3, 4.5]], "parameters": parameters}
    return api.post(f"/serving-endpoints/{name}/invocations", json=body)


def _server(api: httpx.Client, name: str, **parameters: Any) -> str:
    answer = _predict(api, name, **parameters)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == [3, 7.5]
    return str(answer.json()["deployedModelId"])


def test_a_server_learns_its_port_and_routes_from_vertexs_variables(
    api: httpx.Client, server: BerthServer, folder: Path
) -> None:
    name = unique("ctr")
    _create(api, name, _register(api, name, folder))
    wait_ready(api, name)
    answer = _predict(api, name)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["predictions"] == [3, 7.5]
    assert answer.headers["served-model-name"] == f"{name}-1"
    logs = api.get(f"/api/2.0/serving-endpoints/{name}/served-models/{name}-1/logs").json()
    assert "container ready" in logs["logs"]
    no_raw = api.get(f"/serving-endpoints/{name}/invoke/echo")
    assert no_raw.status_code == 404
    assert no_raw.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert 'invoke_route_prefix "/*"' in no_raw.json()["message"]


def test_raw_invoke_reaches_any_path_of_a_server_that_allows_it(
    api: httpx.Client, server: BerthServer, folder: Path
) -> None:
    name = unique("ctr-raw")
    _create(api, name, _register(api, name, folder, invoke_route_prefix="/*"))
    wait_ready(api, name)
    invoke = f"/serving-endpoints/{name}/invoke"
    got = api.get(f"{invoke}/echo/a%20b?x=1&y=two")
    assert got.status_code == 200, got.text
    assert got.json() == {"method": "GET", "path": "/echo/a%20b?x=1&y=two"}
    assert got.headers["served-model-name"] == f"{name}-1"
    posted = api.post(f"{invoke}/echo/infer", content=b"not json", headers=PLAIN)
    assert posted.json() == {"method": "POST", "path": "/echo/infer", "body": "not json"}
    missing = api.get(f"{invoke}/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"error": "no route /nowhere"})
    anonymous = httpx.get(f"{server.url}{invoke}/echo")
    assert anonymous.status_code == 401


def test_a_version_swap_from_one_container_to_another_under_load_fails_no_request(
    api: httpx.Client, server: BerthServer, folder: Path
) -> None:
    name = unique("ctr-swap")
    one = _register(api, name, folder, env=[{"name": "VERSION", "value": "1"}])
    two = _register(api, name, folder, env=[{"name": "VERSION", "value": "2"}])
    _create(api, name, one)
    wait_ready(api, name)
    with Load(server.url, server.token, name) as load:
        put = api.put(
            f"/api/2.0/serving-endpoints/{name}/config",
            json={"served_entities": [entity(name, two)]},
        )
        assert put.status_code == 200, put.text
        assert wait_settled(api, name)["state"]["config_update"] == "NOT_UPDATING"
        wait_until(
            lambda: bool(load.failures) or load.versions["2"] >= 4,
            timeout=30,
            what="version 2 to answer",
        )
    assert load.failures == []
    assert load.versions["1"] > 0 and load.versions["2"] >= 4


def test_a_servers_port_is_reachable_from_its_own_sandbox_only(
    api: httpx.Client, server: BerthServer, folder: Path
) -> None:
    """The server listens on TCP, not on a private socket: in a network namespace of its own,
    no other replica (and nothing else on this host) can connect to it."""
    name = unique("ctr-net")
    _create(api, name, _register(api, name, folder))
    wait_ready(api, name)
    answer = _predict(api, name)
    assert answer.status_code == 200, answer.text
    port = answer.json()["port"]
    with socket.socket() as probe:
        probe.settimeout(2)
        assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} answered from outside"


def test_a_server_that_sleeps_before_it_binds_gets_no_traffic_until_its_probes_pass(
    api: httpx.Client, server: BerthServer, folder: Path
) -> None:
    name = unique("ctr-slow")
    _create(
        api,
        name,
        _register(api, name, folder),
        environment_vars={"SLEEP_BEFORE_BIND": "3"},
    )
    created = time.monotonic()
    wait_ready(api, name)
    assert time.monotonic() - created > 3
    assert _server(api, name)


def test_a_failing_health_route_takes_its_replica_out_of_routing(
    api: httpx.Client, server: BerthServer, folder: Path
) -> None:
    name = unique("ctr-sick")
    version = _register(
        api, name, folder, health_probe={**FAST_PROBE, "http_get": {"path": "/health"}}
    )
    two = {"min_provisioned_concurrency": 8, "max_provisioned_concurrency": 8}
    _create(api, name, version, **two)
    wait_ready(api, name)
    sick = _server(api, name, flip=["healthy"])
    wait_until(
        lambda: "1/2 replicas ready" in _entity(api, name)["state"]["deployment_state_message"],
        timeout=20,
        what="the sick replica to leave the routes",
    )
    answers = [_predict(api, name) for _ in range(30)]
    assert [a.status_code for a in answers] == [200] * 30
    assert sick not in {a.json()["deployedModelId"] for a in answers}
    wait_until(
        lambda: any("left routing: unhealthy" in text for text in _health_events(api, name)),
        timeout=10,
        what="an event saying the sick replica left routing",
    )


def test_a_failing_liveness_probe_restarts_its_replica(
    api: httpx.Client, server: BerthServer, folder: Path
) -> None:
    name = unique("ctr-live")
    probe = {**FAST_PROBE, "http_get": {"path": "/alive"}}
    _create(api, name, _register(api, name, folder, liveness_probe=probe))
    wait_ready(api, name)
    dead = _server(api, name, flip=["alive"])
    wait_until(
        lambda: _answering_server(api, name) not in (None, dead),
        timeout=30,
        what="a new server to answer after the liveness failure",
    )
    logs = api.get(f"/api/2.0/serving-endpoints/{name}/served-models/{name}-1/logs").json()
    assert "the liveness probe failed 1 time(s) in a row" in logs["logs"]
    wait_until(
        lambda: any("back in routing" in text for text in _health_events(api, name)),
        timeout=10,
        what="an event saying the restarted replica is back in routing",
    )


def test_a_startup_that_never_passes_fails_the_update_and_the_old_config_serves(
    api: httpx.Client, server: BerthServer, folder: Path
) -> None:
    name = unique("ctr-never")
    good = _register(api, name, folder)
    bad = _register(
        api,
        name,
        folder,
        env=[{"name": "NEVER_HEALTHY", "value": "1"}],
        deployment_timeout="2s",
    )
    _create(api, name, good)
    wait_ready(api, name)
    put = api.put(
        f"/api/2.0/serving-endpoints/{name}/config",
        json={"served_entities": [entity(name, bad)]},
    )
    assert put.status_code == 200, put.text
    settled = wait_settled(api, name, timeout=60)
    assert settled["state"]["config_update"] == "UPDATE_FAILED"
    message = settled["pending_config"]["served_entities"][0]["state"]["deployment_state_message"]
    assert "within 2s (deployment_timeout)" in message
    assert 'last probe answer: HTTP 500: {"healthy": false}' in message
    assert settled["config"]["config_version"] == 1
    assert _server(api, name)


def _entity(api: httpx.Client, name: str) -> dict[str, Any]:
    served: dict[str, Any] = endpoint(api, name)["config"]["served_entities"][0]
    return served


def _answering_server(api: httpx.Client, name: str) -> str | None:
    answer = _predict(api, name)
    return str(answer.json()["deployedModelId"]) if answer.status_code == 200 else None


def _health_events(api: httpx.Client, name: str) -> list[str]:
    events = api.get(f"/api/2.0/serving-endpoints/{name}/events").json()["events"]
    return [e["message"] for e in events if e["type"] == "REPLICA_HEALTH_CHANGED"]
