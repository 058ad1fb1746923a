"""The ray backend on a real Ray cluster of three nodes on this machine: replicas spread over
the workers, a worker node lost under load costs no request and its replica comes back on the
other, a version with an environment of its own runs in the one its node built, an open LLM
and a custom container answer from their nodes through the runtime's relay, a restarted
server adopts the replicas it finds by name, and so does the follower of a leader killed
under load. Artifacts live in an artifact store at a URL (a real FTP server), which the nodes
copy them from; the servers share one PostgreSQL database.

The tests share one cluster, one server and one endpoint, and run in this order: each leaves
the state the next one starts from (the last two stop the server and start others)."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.containers import SERVER_PY, SPEC
from tests.support.deploy import entity, register, versioned_artifact, wait_ready, wait_settled
from tests.support.envs import write_artifact, write_wheel
from tests.support.ftp import PASSWORD, FtpServer
from tests.support.ha import leader
from tests.support.llm import smollm2_gguf
from tests.support.load import Load
from tests.support.net import wait_until
from tests.support.postgres import PostgresCluster
from tests.support.ray_cluster import RayCluster
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

NAMESPACE = "berth-test"
NAME = "spread"
TWO_REPLICAS = {
    "workload_size": None,
    "min_provisioned_concurrency": 8,
    "max_provisioned_concurrency": 8,
}
"""One replica per 4 of concurrency."""
PLACEMENT_TIMEOUT_S = 20
TAKEOVER_S = 10.0
LEADS = "this server leads the controller now"
"""What a server logs as it begins to lead."""
TINYPKG = "tinypkg-0.1-py3-none-any.whl"
REPORTS_ITS_INTERPRETER = """
    import os
    import sys

    import tinypkg


    def load_model():
        return {}


    def predict(data, model=None):
        runtime = os.path.dirname(os.path.dirname(sys.modules["berth"].__file__))
        return {"value": tinypkg.VALUE, "python": sys.executable, "runtime": runtime}
"""
"""A model whose environment installs tinypkg; it answers where its interpreter and berth's
runtime are."""


@pytest.fixture(scope="module")
def root(bubblewrap: str) -> Iterator[Path]:
    """Short (replicas' sandbox boxes live under it), and removed with what is in it."""
    made = Path(tempfile.mkdtemp(prefix="bray-", dir="/tmp"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(root: Path) -> Iterator[RayCluster]:
    cluster = RayCluster(root)
    try:
        yield cluster.start(("node_a", "node_b"), NAMESPACE)
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def artifacts(ftp_server: FtpServer) -> str:
    return ftp_server.url(f"ray-{uuid.uuid4().hex[:8]}")


@dataclass(frozen=True)
class Store:
    """What servers of one store share: its database, and the key its secrets are sealed with."""

    url: str
    secret_key: str


@pytest.fixture(scope="module")
def store(postgres: PostgresCluster) -> Store:
    return Store(postgres.new_database(), base64.urlsafe_b64encode(os.urandom(32)).decode())


@pytest.fixture(scope="module")
def server(root: Path, cluster: RayCluster, artifacts: str, store: Store) -> Iterator[BerthServer]:
    started = ray_server(root, cluster, artifacts, store).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def endpoint(server: BerthServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    with server.client() as api:
        version = register(api, NAME, versioned_artifact(tmp_path_factory.mktemp("art"), "1"))
        config = {"served_entities": [entity(NAME, version, **TWO_REPLICAS)]}
        created = api.post("/api/2.0/serving-endpoints", json={"name": NAME, "config": config})
        assert created.status_code == 200, created.text
        wait_ready(api, NAME, timeout=120)
    return NAME


def ray_server(
    root: Path, cluster: RayCluster, artifacts: str, store: Store, home: str = "home"
) -> BerthServer:
    return BerthServer(
        home=root / home,
        database_url=store.url,
        extra_env={
            "BERTH_SECRET_KEY": store.secret_key,
            "BERTH_ARTIFACTS_URI": artifacts,
            "BERTH_BACKEND": "ray",
            "BERTH_RAY__ADDRESS": cluster.address,
            "BERTH_RAY__NAMESPACE": NAMESPACE,
            "BERTH_RAY__WORK_DIR": str(root / "nodes"),
            "BERTH_RAY__PLACEMENT_TIMEOUT_S": str(PLACEMENT_TIMEOUT_S),
        },
    )


def replicas(cluster: RayCluster, endpoint: str) -> dict[str, dict[str, Any]]:
    return cluster.actors(f"{endpoint}.")


def query(server: BerthServer, endpoint: str) -> httpx.Response:
    with server.client() as api:
        return api.post(f"/serving-endpoints/{endpoint}/invocations", json={"x": 1})


def test_replicas_answer_from_two_different_nodes(
    cluster: RayCluster, server: BerthServer, endpoint: str, root: Path, artifacts: str
) -> None:
    answer = query(server, endpoint)
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == "1"
    found = replicas(cluster, endpoint)
    assert len(found) == 2
    assert {r["state"] for r in found.values()} == {"READY"}
    assert sorted(r["node"] for r in found.values()) == ["node_a", "node_b"]
    # the gateway reaches each replica at its node's address
    assert all(r["address"].rsplit(":", 1)[1].isdigit() for r in found.values())
    with server.client() as api:  # read on the nodes, while the server long-polls the actors
        logs = api.get(f"/api/2.0/serving-endpoints/{endpoint}/served-models/{NAME}-1/logs")
    assert logs.json()["logs"].count("listening on") == 2, logs.text

    # the artifact is in the store, copied once onto the nodes, and nowhere in the server's home
    with server.client() as api:
        version = api.get(f"/api/2.0/models/{NAME}/versions/1")
    shown = version.json()["model_version"]["artifact_uri"]
    assert shown == artifacts.replace(f":{PASSWORD}@", "@") + f"/{NAME}/1", "no password shown"
    [copy] = (root / "nodes" / "artifacts").iterdir()
    assert (copy / "score.py").is_file()
    assert not (root / "home" / "artifacts").exists()
    assert list((root / "home" / "artifact-copies").iterdir()) == [], "staged there, then gone"


def test_a_replica_no_node_can_hold_fails_its_update(
    cluster: RayCluster, server: BerthServer, tmp_path: Path
) -> None:
    """The cluster has no GPU: Ray never places the actor, and the update fails saying why."""
    name = "gpu"
    with server.client() as api:
        version = register(api, name, versioned_artifact(tmp_path, "1"))
        config = {"served_entities": [entity(name, version, workload_type="GPU_SMALL")]}
        created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
        assert created.status_code == 200, created.text
        state = wait_settled(api, name, timeout=PLACEMENT_TIMEOUT_S + 40)["state"]
        events = api.get(f"/api/2.0/serving-endpoints/{name}/events").text
    assert state["config_update"] == "UPDATE_FAILED"
    assert "no node of the cluster has 1 CPU(s), 1 GPU(s) and 512 MiB of memory free" in events
    wait_until(lambda: replicas(cluster, name) == {}, timeout=30, what="its actor to go")


def test_a_worker_node_lost_under_load_fails_no_request(
    cluster: RayCluster, server: BerthServer, endpoint: str
) -> None:
    before = replicas(cluster, endpoint)
    lost = next(name for name, r in before.items() if r["node"] == "node_b")
    with Load(server.url, server.token, endpoint, clients=4) as load:
        wait_until(lambda: load.total > 40, timeout=30, what="some load before the node stops")
        stopped = time.monotonic()
        cluster.stop_node("node_b")
        wait_until(
            lambda: _ready_on(cluster, endpoint, lost, "node_a"),
            timeout=60,
            what="the lost replica to run again on node_a",
        )
        moved_s = time.monotonic() - stopped
        seen = load.total
        wait_until(lambda: load.total > seen + 20, timeout=30, what="load after the move")
    assert load.failures == []
    with server.client() as api:
        assert wait_ready(api, endpoint)["state"]["ready"] == "READY"
    print(f"\nnode lost under load: {load.total} requests, none failed; back in {moved_s:.1f}s")


def test_a_version_with_its_own_environment_runs_in_the_one_its_node_built(
    root: Path, server: BerthServer, tmp_path: Path
) -> None:
    """The node builds the environment itself (the server builds none), under the nodes'
    work dir by the same hash, and runs the replica with it and a runtime copy there."""
    name = "own-env"
    files = {"score.py": REPORTS_ITS_INTERPRETER, "requirements.txt": f"./wheels/{TINYPKG}"}
    artifact = write_artifact(tmp_path / "art", files)
    write_wheel(artifact / "wheels" / TINYPKG, value="7")
    with server.client() as api:
        version = register(api, name, artifact)
        config = {"served_entities": [entity(name, version)]}
        created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
        assert created.status_code == 200, created.text
        wait_ready(api, name, timeout=120)
        details = api.get(f"/api/2.0/models/{name}/versions/{version}").json()["model_version"]
    env_hash = details["details"]["environment"]["hash"]
    answer = query(server, name)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["value"] == 7
    assert Path(found["python"]).is_relative_to(root / "nodes" / "envs" / env_hash)
    assert Path(found["runtime"]).is_relative_to(root / "nodes" / "envs")
    assert not (root / "home" / "envs" / env_hash).exists()


def test_an_open_llm_answers_from_its_node_through_the_runtimes_relay(
    cluster: RayCluster, server: BerthServer, tmp_path: Path
) -> None:
    """llama.cpp listens on a Unix socket in the replica's box; the runtime relays the node's
    TCP port to it once the weights are loaded: plain and streamed chats go through whole."""
    name = "smol"
    os.link(smollm2_gguf(), tmp_path / smollm2_gguf().name)
    with server.client() as api:
        version = register(api, name, tmp_path)
        config = {"served_entities": [entity(name, version, scale_to_zero_enabled=False)]}
        created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
        assert created.status_code == 200, created.text
        wait_ready(api, name, timeout=240)
        [replica] = replicas(cluster, name).values()
        assert replica["state"] == "READY" and replica["address"].rsplit(":", 1)[1].isdigit()
        chat = {"messages": [{"role": "user", "content": "Name a color."}], "max_tokens": 8}
        answer = api.post(f"/serving-endpoints/{name}/invocations", json=chat)
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"]
        with api.stream(
            "POST", f"/serving-endpoints/{name}/invocations", json={**chat, "stream": True}
        ) as streamed:
            assert streamed.status_code == 200
            events = [line for line in streamed.iter_lines() if line.startswith("data: ")]
        assert len(events) > 2 and events[-1] == "data: [DONE]"
        assert api.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200
    wait_until(lambda: replicas(cluster, name) == {}, timeout=30, what="its actor to go")


def test_a_custom_container_answers_from_its_node_probed_on_its_own_health_route(
    cluster: RayCluster, server: BerthServer, tmp_path: Path
) -> None:
    """The container's relay appears once its probes pass; the runtime relays the node's port
    to it, and the node probes the container's own health route (not berth's ``/health``,
    which this server does not answer)."""
    name = "ctr"
    (tmp_path / "server.py").write_text(SERVER_PY)
    spec = {**SPEC, "health_route": "/healthy-here"}
    with server.client() as api:
        assert api.post("/api/2.0/models", json={"name": name}).status_code == 200
        body = {"source": str(tmp_path), "container_spec": spec}
        registered = api.post(f"/api/2.0/models/{name}/versions", json=body)
        assert registered.status_code == 200, registered.text
        config = {"served_entities": [entity(name, "1", scale_to_zero_enabled=False)]}
        created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
        assert created.status_code == 200, created.text
        wait_ready(api, name, timeout=120)
        [replica] = replicas(cluster, name).values()
        assert replica["state"] == "READY" and replica["address"].rsplit(":", 1)[1].isdigit()
        rows = {"instances": [[1, 2], [3, 4.5]]}
        answer = api.post(f"/serving-endpoints/{name}/invocations", json=rows)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == [3, 7.5]
        assert api.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200
    wait_until(lambda: replicas(cluster, name) == {}, timeout=30, what="its actor to go")


def test_a_restarted_server_adopts_the_replicas_by_name(
    root: Path,
    cluster: RayCluster,
    server: BerthServer,
    endpoint: str,
    artifacts: str,
    store: Store,
) -> None:
    before = replicas(cluster, endpoint)
    server.stop(signal.SIGTERM)
    assert replicas(cluster, endpoint) == before  # detached: they outlive the server
    second = ray_server(root, cluster, artifacts, store).start()
    try:
        with second.client() as api:
            assert wait_ready(api, endpoint)["config"]["config_version"] == 1
        answer = query(second, endpoint)
        assert answer.status_code == 200 and answer.json()["version"] == "1"
        after = replicas(cluster, endpoint)
    finally:
        second.stop()
    assert _identities(after) == _identities(before)  # adopted, none started again
    assert "adopting replica" in second.log_path.read_text()


def test_the_follower_of_a_leader_killed_under_load_adopts_its_replicas_and_rolls_out(
    root: Path,
    cluster: RayCluster,
    server: BerthServer,
    endpoint: str,
    artifacts: str,
    store: Store,
    tmp_path: Path,
) -> None:
    """Two servers on one PostgreSQL, their homes apart. The leader is killed (-9) while
    clients query through the follower: the follower leads within 10 s and adopts the actors
    by name (none started again), no query fails, and a config update it then takes adds a
    version beside them, whose replica answers."""
    server.start()  # the module's server, stopped by the test before: it leads again
    follower = ray_server(root, cluster, artifacts, store, home="home-b").start()
    try:
        assert leader(server)["leading"] and not leader(follower)["leading"]
        wait_until(
            lambda: query(follower, endpoint).status_code == 200,
            timeout=10,
            what="the follower to route to the leader's replicas",
        )
        with follower.client() as api:
            version = register(api, NAME, versioned_artifact(tmp_path, "2"))
        before = replicas(cluster, endpoint)
        token = leader(follower)["fencing_token"]
        with Load(follower.url, follower.token, endpoint, clients=4) as load:
            wait_until(lambda: load.total > 20, timeout=30, what="some load before the kill")
            server.stop(signal.SIGKILL)
            killed = time.monotonic()
            wait_until(lambda: leader(follower)["leading"], timeout=TAKEOVER_S, what="it to lead")
            took_over = time.monotonic() - killed
            assert leader(follower)["fencing_token"] > token
            wait_until(
                lambda: set(before) <= _adopted_since_leading(follower),
                timeout=10,
                what="the new leader to adopt the replicas",
            )
            with follower.client() as api:
                changed = api.put(
                    f"/api/2.0/serving-endpoints/{endpoint}/config",
                    json=_beside(version),
                )
                assert changed.status_code == 200, changed.text
                assert wait_ready(api, endpoint)["config"]["config_version"] == 2
            seen = load.versions[version]
            wait_until(
                lambda: load.versions[version] > seen + 20,
                timeout=30,
                what=f"the load to be answered by version {version}",
            )
        after = replicas(cluster, endpoint)
    finally:
        follower.stop()
    print(f"\nleader killed under load: the follower leads after {took_over:.2f} s")
    assert load.failures == []
    assert set(before) <= set(after), "the adopted replicas were replaced"
    assert _identities({name: after[name] for name in before}) == _identities(before)
    [added] = set(after) - set(before)
    assert added.startswith(f"{endpoint}.{NAME}-{version}.")


def test_berth_and_its_local_server_load_no_ray() -> None:
    """The ray backend imports Ray only once it connects: a local server never loads it."""
    code = (
        "import sys, berth, berth.cli.main, berth.server.app, berth.server.backends\n"
        "print('ray' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert done.stdout.decode().strip() == "False"


def _ready_on(cluster: RayCluster, endpoint: str, name: str, node: str) -> bool:
    found = replicas(cluster, endpoint).get(name)
    return found is not None and found["state"] == "READY" and found["node"] == node


def _identities(found: dict[str, dict[str, Any]]) -> dict[str, tuple[str, int]]:
    return {name: (r["incarnation"], r["pid"]) for name, r in found.items()}


def _adopted_since_leading(server: BerthServer) -> set[str]:
    """The replicas ``server`` adopted since it last began to lead, as its log says (it
    adopted them once at its start too, only to let them go while another led)."""
    text = server.log_path.read_text()
    if LEADS not in text:
        return set()
    return set(re.findall(r"adopting replica (\S+)", text.rsplit(LEADS, 1)[1]))


def _beside(version: str) -> dict[str, Any]:
    """The endpoint's config with ``version`` of the model served beside version 1 (left as
    it is, so its replicas are kept), taking all the traffic."""
    return {
        "served_entities": [
            entity(NAME, "1", **TWO_REPLICAS),
            entity(NAME, version, scale_to_zero_enabled=False),
        ],
        "traffic_config": {
            "routes": [
                {"served_entity_name": f"{NAME}-1", "traffic_percentage": 0},
                {"served_entity_name": f"{NAME}-{version}", "traffic_percentage": 100},
            ]
        },
    }
