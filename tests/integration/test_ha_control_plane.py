"""Two ``berth serve`` on one PostgreSQL: both answer the API and queries, one runs the
controller, and when it is killed the other takes over within 10 s, starting no replica twice."""

from __future__ import annotations

import signal
import time
import uuid
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.support.deploy import entity, register, swap_under_load, versioned_artifact, wait_ready
from tests.support.ftp import FtpServer
from tests.support.ha import StartServers, leader
from tests.support.net import wait_until
from tests.support.replicas import alive, no_replicas_under, replica_pids
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

TAKEOVER_S = 10.0


@pytest.fixture
def servers(ha_servers: StartServers, ftp_server: FtpServer) -> list[BerthServer]:
    """Two servers on one fresh database and one artifact store at a URL (a real FTP
    server), each with a home of its own; the first started leads."""
    return ha_servers(BERTH_ARTIFACTS_URI=ftp_server.url(f"ha-{uuid.uuid4().hex[:8]}"))


def create(api: httpx.Client, name: str, version: str) -> None:
    config = {"served_entities": [entity(name, version, scale_to_zero_enabled=False)]}
    answer = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert answer.status_code == 200, answer.text


def replica_counts(server: BerthServer, name: str) -> tuple[int, int]:
    """The (current, desired) replicas GET answers through ``server`` for the sole entity."""
    with server.client() as api:
        [served] = api.get(f"/api/2.0/serving-endpoints/{name}").json()["config"]["served_entities"]
    return served.get("current_replicas", 0), served.get("desired_replicas", 0)


def answers(server: BerthServer, name: str) -> str | None:
    """The version the endpoint answers with through ``server``; None when it does not."""
    with server.client() as api:
        answer = api.post(f"/serving-endpoints/{name}/invocations", json={"inputs": [1]})
    return str(answer.json()["version"]) if answer.status_code == 200 else None


def test_one_leads_and_an_endpoint_made_through_one_answers_through_the_other(
    servers: list[BerthServer], tmp_path: Path
) -> None:
    a, b = servers
    seen = [leader(a), leader(b)]
    assert seen[0]["leader"] == seen[1]["leader"] == seen[0]["self"] != seen[1]["self"]
    assert [s["leading"] for s in seen] == [True, False]

    with a.client() as api:
        create(api, "shared", register(api, "shared", versioned_artifact(tmp_path, "1")))
        wait_ready(api, "shared")
    wait_until(lambda: answers(b, "shared") == "1", timeout=10, what="b to route to a's replica")
    with b.client() as api:  # the follower's API reads the same store
        assert api.get("/api/2.0/serving-endpoints/shared").json()["state"]["ready"] == "READY"
    assert replica_pids(b.home, "shared") == {}  # b runs no replica: it routes to a's
    # ... and answers with the leader's replica counts, which it has no replica to count
    wait_until(
        lambda: replica_counts(b, "shared") == replica_counts(a, "shared") == (1, 1),
        timeout=5,
        what="b to answer a's replica counts",
    )


def test_the_follower_takes_over_within_ten_seconds_of_a_kill_and_starts_no_replica_twice(
    servers: list[BerthServer], tmp_path: Path
) -> None:
    a, b = servers
    with b.client() as api:  # made through the follower, run by the leader
        create(api, "kept", register(api, "kept", versioned_artifact(tmp_path, "1")))
        register(api, "kept", versioned_artifact(tmp_path, "2"))
        wait_ready(api, "kept")
    wait_until(lambda: answers(b, "kept") == "1", timeout=10, what="b to route to a's replica")
    token = leader(b)["fencing_token"]
    orphans = replica_pids(a.home, "kept")

    a.stop(signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: leader(b)["leading"], timeout=TAKEOVER_S, what="b to lead")
    took_over = time.monotonic() - killed
    print(f"\nleader killed: the follower leads after {took_over:.2f} s")
    assert leader(b)["fencing_token"] > token

    with b.client() as api:
        answer = api.put(
            "/api/2.0/serving-endpoints/kept/config",
            json={"served_entities": [entity("kept", "2", scale_to_zero_enabled=False)]},
        )
        assert answer.status_code == 200, answer.text
        assert wait_ready(api, "kept")["config"]["config_version"] == 2
    assert answers(b, "kept") == "2"
    # b read version 2's artifact from the store, which a registered, not from a's home
    assert [p.name for p in (b.home / "artifact-copies").iterdir()] != []
    assert not (a.home / "artifacts").exists() and not (b.home / "artifacts").exists()

    # The killed server's replicas outlived it (as on any kill -9); restarted, it follows b
    # and stops them, so each replica id runs once, on the server that leads.
    assert all(alive(pid) for pid in orphans.values())
    a.start()
    assert not leader(a)["leading"]
    wait_until(partial(no_replicas_under, a.home), timeout=20, what="a to drop its leftovers")
    running = [*replica_pids(a.home, "kept"), *replica_pids(b.home, "kept")]
    assert len(running) == len(set(running)) == 1


def test_a_request_to_an_entity_scaled_to_zero_through_the_follower_starts_its_replica(
    servers: list[BerthServer], tmp_path: Path
) -> None:
    """The follower's gateway holds the request; the demand reaches the leader's autoscaler
    through the store, and the replica the leader starts answers it."""
    a, b = servers
    with a.client() as api:
        version = register(api, "cold", versioned_artifact(tmp_path, "1"))
        idle = {"scale_to_zero_enabled": True, "scale_to_zero_idle_seconds": 1}
        config = {"served_entities": [entity("cold", version, **idle)]}
        answer = api.post("/api/2.0/serving-endpoints", json={"name": "cold", "config": config})
        assert answer.status_code == 200, answer.text
        wait_ready(api, "cold")
    wait_until(lambda: replica_pids(a.home, "cold") == {}, timeout=60, what="cold to scale to zero")
    started = time.monotonic()
    assert answers(b, "cold") == "1"
    print(
        f"\nscaled to zero, queried through the follower: answered in "
        f"{time.monotonic() - started:.2f} s"
    )
    assert len(replica_pids(a.home, "cold")) == 1


def test_rollouts_under_load_through_the_follower_fail_no_request(
    servers: list[BerthServer], tmp_path: Path
) -> None:
    """The leader stops an old replica only once the follower's gateway routes past it."""
    a, b = servers
    with a.client() as api:
        versions = [register(api, "swap", versioned_artifact(tmp_path, str(v))) for v in (1, 2, 3)]
        create(api, "swap", versions[0])
        wait_ready(api, "swap")
    wait_until(lambda: answers(b, "swap") == "1", timeout=10, what="b to route to a's replica")
    with a.client() as api:
        load = swap_under_load(api, b.url, b.token, "swap", versions[1:])
    assert load.failures == []
    assert "1" in load.versions and load.total > 50
    wait_until(lambda: answers(b, "swap") == "3", timeout=10, what="b to route to the newest")
