"""Rollouts under load, replica crashes and server crashes lose no request and leave no orphan."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.deploy import entity, register, swap_under_load, versioned_artifact, wait_ready
from tests.support.load import Load
from tests.support.net import wait_until
from tests.support.replicas import alive, processes_under, replica_pids, replica_socket
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


def create(api: httpx.Client, name: str, version: str, **extra: object) -> None:
    answer = api.post(
        "/api/2.0/serving-endpoints",
        json={"name": name, "config": {"served_entities": [entity(name, version, **extra)]}},
    )
    assert answer.status_code == 200, answer.text
    wait_ready(api, name)


def test_five_version_swaps_under_load_fail_no_request(
    api: httpx.Client, server: BerthServer, tmp_path: Path
) -> None:
    name = f"swap-{uuid.uuid4().hex[:6]}"
    versions = [register(api, name, versioned_artifact(tmp_path, str(v))) for v in range(1, 7)]
    create(api, name, versions[0])
    load = swap_under_load(api, server.url, server.token, name, versions[1:])
    assert load.failures == []
    assert set(load.versions) == {str(v) for v in range(1, 7)}
    assert load.total > 100


def test_killed_replica_is_replaced_and_two_replicas_lose_nothing(
    api: httpx.Client, server: BerthServer, tmp_path: Path
) -> None:
    name = f"kill-{uuid.uuid4().hex[:6]}"
    fixed_4 = {"workload_size": None, "min_provisioned_concurrency": 16}
    version = register(api, name, versioned_artifact(tmp_path, "1"))
    create(api, name, version, **fixed_4, max_provisioned_concurrency=16)
    before = replica_pids(server.home, name)
    assert len(before) == 4
    victim_id, victim = sorted(before.items())[0]
    with Load(server.url, server.token, name, clients=6) as load:
        wait_until(lambda: load.total > 50, timeout=30, what="some load before the kill")
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: (
                replica_pids(server.home, name).get(victim_id, victim) != victim
                and wait_ready(api, name)["state"]["ready"] == "READY"
            ),
            timeout=30,
            what="the killed replica to be replaced",
        )
        seen = load.total
        wait_until(lambda: load.total > seen + 50, timeout=30, what="load after the restart")
    assert load.failures == []


def test_killing_the_sole_replica_under_load_loses_no_request(
    api: httpx.Client, server: BerthServer, tmp_path: Path
) -> None:
    """Requests wait for the replacement, as they do for an entity scaled to zero."""
    name = f"solo-{uuid.uuid4().hex[:6]}"
    create(api, name, register(api, name, versioned_artifact(tmp_path, "1")))
    ((_, pid),) = replica_pids(server.home, name).items()
    box = replica_socket(server.home, name).parent
    wait_until(lambda: any(box.glob("z-*.sock")), timeout=30, what="the warm zygote")
    with Load(server.url, server.token, name, clients=4) as load:
        wait_until(lambda: load.total > 40, timeout=30, what="some load before the kill")
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), timeout=5, what="the replica to die")
        wait_until(
            lambda: (
                any(t > killed for t, _ in load.answers[-8:])
                and replica_pids(server.home, name) not in ({}, {name: pid})
            ),
            timeout=30,
            what="answers from the replacement",
        )
        seen = load.total
        wait_until(lambda: load.total > seen + 40, timeout=30, what="load after the restart")
    assert load.failures == []
    times = sorted(t for t, _ in load.answers)
    gap = max(b - a for a, b in zip(times, times[1:], strict=False) if b > killed)
    print(f"\nsole replica killed: longest wait for an answer {gap * 1000:.0f} ms")


def test_a_hung_replica_leaves_the_routes_and_is_replaced(
    make_server: Callable[..., BerthServer], tmp_path: Path
) -> None:
    """A replica that stops answering its health check (SIGSTOP: alive, but hung) is killed
    and replaced after ``failure_threshold`` missed probes."""
    server = make_server(
        BERTH_REPLICAS__PROBE_PERIOD_S="0.2",
        BERTH_REPLICAS__PROBE_TIMEOUT_S="0.2",
        BERTH_REPLICAS__FAILURE_THRESHOLD="2",
    )
    with server.client() as api:
        name = "hung"
        create(api, name, register(api, name, versioned_artifact(tmp_path, "1")))
        ((replica_id, pid),) = replica_pids(server.home, name).items()
        os.kill(pid, signal.SIGSTOP)
        wait_until(lambda: not alive(pid), timeout=20, what="the hung replica to be killed")
        wait_until(
            lambda: (
                replica_pids(server.home, name).get(replica_id, pid) != pid
                and api.post(f"/serving-endpoints/{name}/invocations", json={}).status_code == 200
            ),
            timeout=30,
            what="a replacement to answer",
        )
        events = api.get(f"/api/2.0/serving-endpoints/{name}/events").text
    assert "health check" in server.log_path.read_text() or "health check" in events


@pytest.mark.stores("sqlite", "postgresql")  # what a restarted server adopts, it reads back
def test_server_killed_and_restarted_readopts_replicas(
    make_server: Callable[..., BerthServer], tmp_path: Path
) -> None:
    first = make_server()
    with first.client() as api:
        name = "survivor"
        create(api, name, register(api, name, versioned_artifact(tmp_path, "1")))
    pids = replica_pids(first.home, name)
    first.stop(signal.SIGKILL)
    assert all(alive(p) for p in pids.values())  # replicas live in their own process groups

    second = BerthServer(home=first.home, database_url=first.database_url)
    second.start()
    try:
        with second.client() as api:
            ready = wait_ready(api, name)
            assert ready["config"]["config_version"] == 1
            answer = api.post(f"/serving-endpoints/{name}/invocations", json={"x": 1})
            assert answer.status_code == 200 and answer.json()["version"] == "1"
        assert replica_pids(second.home, name) == pids  # adopted, not restarted
    finally:
        second.stop()
    wait_until(
        lambda: processes_under(first.home) == [], timeout=20, what="replicas to stop with berth"
    )
