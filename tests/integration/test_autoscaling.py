"""Autoscaling on in-flight requests and scale to zero, on a real server with real replicas."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.deploy import FAKES, endpoint, entity, register, unique, wait_ready
from tests.support.load import Load
from tests.support.metrics import samples, value
from tests.support.net import wait_until
from tests.support.servers import FAST_SCALING, BerthServer

SLEEPY = FAKES / "sleepy"
COLD_START_TIMEOUT_S = 4

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scaling_server(make_server: Callable[..., BerthServer]) -> BerthServer:
    """Short delays, so that scaling shows within seconds."""
    return make_server(
        **FAST_SCALING, BERTH_AUTOSCALING__COLD_START_TIMEOUT_S=str(COLD_START_TIMEOUT_S)
    )


@pytest.fixture
def api(scaling_server: BerthServer) -> Iterator[httpx.Client]:
    with scaling_server.client() as client:
        yield client


def create(api: httpx.Client, **fields: Any) -> str:
    name = unique("scale")
    register(api, name, SLEEPY)
    config = {"served_entities": [{**entity(name, "1"), **fields}]}
    created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert created.status_code == 200, created.text
    wait_ready(api, name)
    return name


def served(api: httpx.Client, name: str) -> dict[str, Any]:
    entity: dict[str, Any] = endpoint(api, name)["config"]["served_entities"][0]
    return entity


def replicas(api: httpx.Client, name: str) -> tuple[int, int]:
    found = served(api, name)
    return found["current_replicas"], found["desired_replicas"]


def wait_replicas(api: httpx.Client, name: str, current: int, desired: int) -> None:
    wait_until(
        lambda: replicas(api, name) == (current, desired),
        timeout=60,
        what=f"{name} to run {current} of {desired} wanted replicas (now {replicas(api, name)})",
        every=0.2,
    )


def desired_metric(api: httpx.Client, name: str) -> float:
    found = samples(api.get(f"/api/2.0/serving-endpoints/{name}/metrics").text)
    return value(found, "berth_replicas_desired", endpoint=name, served_entity=f"{name}-1")


def host_pids(home: Path, name: str) -> dict[str, int]:
    """Each running replica's id and pid, as the host sees it (the model sees its own
    PID namespace)."""
    found = {}
    for state in (home / "replicas").glob(f"{name}.*/state.json"):
        found[state.parent.name] = int(json.loads(state.read_text())["pid"])
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_replicas_follow_in_flight_requests_up_and_down(
    api: httpx.Client, scaling_server: BerthServer
) -> None:
    # 1 to 3 replicas of 4 slots each; 12 clients keep every slot busy.
    name = create(
        api, workload_size=None, min_provisioned_concurrency=4, max_provisioned_concurrency=12
    )
    assert replicas(api, name) == (1, 1)
    body = {"sleep": 0.05}
    with Load(scaling_server.url, scaling_server.token, name, clients=12, body=body) as load:
        wait_replicas(api, name, 3, 3)
        assert desired_metric(api, name) == 3
        pids = host_pids(scaling_server.home, name)
        served_by = set(load.versions)
        wait_until(
            lambda: len(set(load.versions) - served_by) > 0 or len(served_by) >= 3,
            timeout=30,
            what="the new replicas to answer",
        )
    assert load.failures == []
    assert len(load.versions) == 3, f"answers came from {len(load.versions)} replicas"
    assert set(load.versions) == set(pids)
    wait_replicas(api, name, 1, 1)
    assert desired_metric(api, name) == 1
    wait_until(
        lambda: sum(alive(pid) for pid in pids.values()) == 1,
        timeout=30,
        what="2 replicas to stop",
    )
    assert api.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200


def test_an_idle_entity_scales_to_zero_and_the_next_request_waits_for_its_replica(
    api: httpx.Client, scaling_server: BerthServer
) -> None:
    name = create(api, scale_to_zero_enabled=True, scale_to_zero_idle_seconds=1)
    wait_replicas(api, name, 0, 0)
    detail = endpoint(api, name)
    assert detail["state"]["ready"] == "READY"
    assert served(api, name)["state"]["deployment_state_message"].startswith("Scaled to zero")
    assert not any((scaling_server.home / "replicas").glob(f"{name}.*")), "no replica runs"

    url = f"{scaling_server.url}/serving-endpoints/{name}/invocations"
    headers = {"Authorization": f"Bearer {scaling_server.token}"}
    started = time.monotonic()
    answer = httpx.post(url, json={}, headers=headers, timeout=30)
    cold_s = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert cold_s < COLD_START_TIMEOUT_S
    ((replica_id, pid),) = host_pids(scaling_server.home, name).items()
    assert answer.json()["version"] == replica_id
    assert replicas(api, name) == (1, 1)
    # Idle again: the replica stops after the entity's idle period.
    wait_replicas(api, name, 0, 0)
    wait_until(lambda: not alive(pid), timeout=30, what=f"replica {pid} to stop")
    assert api.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200


def test_a_replica_slower_than_the_cold_start_timeout_gets_503_with_retry_after(
    api: httpx.Client, scaling_server: BerthServer, tmp_path: Path
) -> None:
    name = unique("scale")
    register(api, name, SLEEPY)
    # Where the sandboxed model can read it: its own (read-only to it) artifact.
    delay = next(scaling_server.home.glob(f"artifacts/{name}/*/score.py")).parent / "load-delay"
    env = {"SLEEPY_LOAD_DELAY_FILE": str(delay)}
    fields = {"scale_to_zero_enabled": True, "scale_to_zero_idle_seconds": 1}
    config = {"served_entities": [{**entity(name, "1"), **fields, "environment_vars": env}]}
    created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert created.status_code == 200, created.text
    wait_ready(api, name)
    wait_replicas(api, name, 0, 0)
    delay.write_text("60")  # the next replica loads for a minute

    url = f"{scaling_server.url}/serving-endpoints/{name}/invocations"
    headers = {"Authorization": f"Bearer {scaling_server.token}"}
    started = time.monotonic()
    answer = httpx.post(url, json={}, headers=headers, timeout=30)
    waited = time.monotonic() - started
    assert answer.status_code == 503, answer.text
    assert answer.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "scaled to zero" in answer.json()["message"]
    assert int(answer.headers["retry-after"]) >= 1
    assert waited >= COLD_START_TIMEOUT_S, "held for the whole cold-start timeout first"
    assert replicas(api, name) == (0, 1), "its replica is still starting"
    assert endpoint(api, name)["state"]["ready"] == "READY"
    assert api.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200
