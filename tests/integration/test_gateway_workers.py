"""``berth serve --gateway-workers 2``: one public port for the management API and queries,
queries answered by two worker processes that share rate limits through Redis, their metrics,
payloads and access logs read through the server, rollouts under load that lose nothing, a
killed worker replaced, and nothing left running after SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from databricks.sdk import WorkspaceClient
from openai import OpenAI

from berth.cli.demo import DEMO, DEMO_QUERY
from tests.support.cli import Cli
from tests.support.deploy import (
    ECHO,
    deploy,
    entity,
    register,
    swap_under_load,
    unique,
    versioned_artifact,
    wait_ready,
    wait_settled,
)
from tests.support.metrics import Samples, samples, value
from tests.support.net import wait_until
from tests.support.redis import RedisServer
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


def scrape(api: httpx.Client, path: str = "/metrics") -> Samples:
    answer = api.get(path)
    assert answer.status_code == 200, answer.text
    return samples(answer.text)


def per_worker(found: Samples) -> dict[str, float]:
    return {
        dict(labels)["worker"]: count
        for (name, labels), count in found.items()
        if name == "berth_worker_requests_total"
    }


def wait_workers(api: httpx.Client, count: int = 2) -> None:
    wait_until(
        lambda: value(scrape(api), "berth_gateway_workers") == count,
        timeout=60,
        what=f"{count} gateway workers to serve",
    )


def query_fresh(url: str, token: str, name: str, body: object) -> httpx.Response:
    """One query on a connection of its own: the kernel picks the worker per connection."""
    return httpx.post(
        f"{url}/serving-endpoints/{name}/invocations",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (workers, Redis, replicas, zygotes and their forks)."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(") ", 1)[1].split()[:2]
            if state != "Z":
                parents[int(proc.name)] = int(ppid)
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def worker_pids(server: BerthServer) -> set[int]:
    assert server.proc is not None
    return {p for p in children(server.proc.pid) if "berth.server.worker" in command(p)}


@pytest.fixture(scope="module")
def workers(
    make_server: Callable[..., BerthServer], redis_server: RedisServer
) -> Iterator[BerthServer]:
    """A server whose queries two workers answer, sharing the test's real Redis."""
    server = make_server("--gateway-workers", "2", BERTH_REDIS_URL=redis_server.url)
    with server.client() as api:
        wait_workers(api)
    yield server


@pytest.fixture
def api(workers: BerthServer) -> Iterator[httpx.Client]:
    with workers.client() as client:
        yield client


def test_one_port_serves_the_sdks_the_cli_and_queries_from_both_workers(
    api: httpx.Client, workers: BerthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CONFIG_FILE", "DATABRICKS_CLIENT_ID"):
        monkeypatch.delenv(variable, raising=False)
    name = deploy(api, ECHO, prefix="wk")
    workspace = WorkspaceClient(host=workers.url, token=workers.token)
    assert name in [e.name for e in workspace.serving_endpoints.list()]
    got = workspace.serving_endpoints.get(name)
    assert got.state is not None and got.state.ready is not None
    assert got.state.ready.value == "READY"
    openai = OpenAI(base_url=f"{workers.url}/serving-endpoints", api_key=workers.token)
    assert name in [model.id for model in openai.models.list()]
    # An upload streams through a worker to the control process.
    cli = Cli(workers.url, workers.token)
    uploaded = cli.json("models", "register", unique("up"), str(ECHO), "--upload")
    assert uploaded["version"] == "1" and uploaded["source"].startswith("upload:")

    before = scrape(api)
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda i: query_fresh(workers.url, workers.token, name, [i]), range(200))
        )
    assert [a.status_code for a in answers] == [200] * 200
    assert [a.json() for a in answers] == [{"predictions": [i]} for i in range(200)]

    after = scrape(api)
    served = {w: n - per_worker(before).get(w, 0) for w, n in per_worker(after).items()}
    assert set(served) == {"0", "1"} and all(n > 0 for n in served.values()), served
    assert sum(served.values()) == 200
    ok = dict(endpoint=name, served_entity=f"{name}-1", status="200")
    assert value(after, "berth_requests_total", **ok) == 200
    mine = scrape(api, f"/api/2.0/serving-endpoints/{name}/metrics")
    assert value(mine, "berth_requests_total", **ok) == 200
    assert value(mine, "berth_request_duration_seconds_count", endpoint=name) == 200
    assert value(mine, "berth_request_stage_seconds_count", endpoint=name, stage="upstream") == 200
    assert value(mine, "berth_in_flight_requests", endpoint=name) == 0
    assert (
        value(mine, "berth_replicas", served_entity=f"{name}-1", endpoint=name, state="READY") == 1
    )


def test_an_exact_rate_limit_holds_across_workers(api: httpx.Client, workers: BerthServer) -> None:
    limit = {"calls": 50, "key": "endpoint", "renewal_period": "minute"}
    name = deploy(api, ECHO, prefix="wklim", ai_gateway={"rate_limits": [limit]})
    before = per_worker(scrape(api))
    with ThreadPoolExecutor(32) as pool:
        answers = list(
            pool.map(lambda i: query_fresh(workers.url, workers.token, name, [i]), range(150))
        )
    assert Counter(a.status_code for a in answers) == {200: 50, 429: 100}
    after = per_worker(scrape(api))
    assert all(after[w] > before.get(w, 0) for w in ("0", "1")), (before, after)


def test_payloads_and_access_logs_written_by_workers_read_back(
    api: httpx.Client, workers: BerthServer
) -> None:
    table = {"inference_table_config": {"enabled": True}}
    name = deploy(api, ECHO, prefix="wkcap", ai_gateway=table)
    logged = api.put(f"/api/2.0/serving-endpoints/{name}/logging", json={"access_log": True})
    assert logged.status_code == 200, logged.text
    wait_until(
        lambda: (
            query_fresh(workers.url, workers.token, name, []).status_code == 200
            and api.get(f"/api/2.0/serving-endpoints/{name}/access-logs").json()["logs"] != ""
        ),
        timeout=30,
        what="the access log to be on in the workers",
    )
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda i: query_fresh(workers.url, workers.token, name, [i]), range(300))
        )
    assert all(a.status_code == 200 for a in answers)
    ids = {a.headers["x-request-id"] for a in answers}

    def captured() -> set[str]:
        found = api.get(f"/api/2.0/serving-endpoints/{name}/payloads", params={"limit": 5000})
        assert found.status_code == 200, found.text
        return {row["request_id"] for row in found.json()["payloads"]}

    wait_until(lambda: ids <= captured(), timeout=60, what="300 rows captured by two workers")

    def counted() -> float:
        return value(scrape(api), "berth_capture_rows_total", endpoint=name, outcome="written")

    # Counted just after each file is renamed into place: the figure follows the rows.
    wait_until(lambda: counted() == len(captured()), timeout=30, what="rows written counted")
    lines = api.get(
        f"/api/2.0/serving-endpoints/{name}/access-logs", params={"lines": 1000}
    ).json()["logs"]
    logged_ids = {json.loads(line)["request_id"] for line in lines.splitlines()}
    assert ids <= logged_ids  # every line whole: two processes append to one file


def test_version_swaps_under_load_with_workers_fail_no_request(
    api: httpx.Client, workers: BerthServer, tmp_path: Path
) -> None:
    name = unique("wkswap")
    versions = [register(api, name, versioned_artifact(tmp_path, str(v))) for v in range(1, 6)]
    created = api.post(
        "/api/2.0/serving-endpoints",
        json={"name": name, "config": {"served_entities": [entity(name, versions[0])]}},
    )
    assert created.status_code == 200, created.text
    wait_ready(api, name)
    load = swap_under_load(api, workers.url, workers.token, name, versions[1:])
    assert load.failures == []
    assert set(load.versions) == {str(v) for v in range(1, 6)}


def control_url(server: BerthServer) -> str:
    """The control process's own address, as the server logs it at start."""
    found = re.search(r"control on (http://[0-9.]+:[0-9]+)", server.log_path.read_text())
    assert found is not None, "berth serve logs where its control process listens"
    return found[1]


def replica_pids(home: Path, endpoint: str) -> list[int]:
    return [
        int(json.loads(state.read_text())["pid"])
        for state in (home / "replicas").glob(f"{endpoint}.*/state.json")
    ]


def alive(pid: int) -> bool:
    return bool(command(pid))


def test_a_replica_is_stopped_only_once_every_worker_routes_past_it(
    workers: BerthServer, tmp_path: Path
) -> None:
    """A stalled worker still holds the old routes: the replicas they name must outlive the
    rollouts until the worker has taken the new ones, or its next request would find them
    gone."""
    name = unique("wkstall")
    auth = {"Authorization": f"Bearer {workers.token}"}
    # Straight to the control process: a connection to the stalled worker would hang.
    with httpx.Client(base_url=control_url(workers), headers=auth, timeout=30) as api:
        versions = [register(api, name, versioned_artifact(tmp_path, v)) for v in "123"]
        body = {"name": name, "config": {"served_entities": [entity(name, versions[0])]}}
        assert api.post("/api/2.0/serving-endpoints", json=body).status_code == 200
        wait_ready(api, name)
        stalled = min(worker_pids(workers))
        os.kill(stalled, signal.SIGSTOP)
        try:
            retired = set(replica_pids(workers.home, name))
            for version in versions[1:]:
                put = api.put(
                    f"/api/2.0/serving-endpoints/{name}/config",
                    json={"served_entities": [entity(name, version)]},
                )
                assert put.status_code == 200, put.text
                assert wait_settled(api, name)["state"]["config_update"] == "NOT_UPDATING"
                if version == "2":
                    retired |= set(replica_pids(workers.home, name))
            # The second rollout took passes of the controller well after it chose to retire
            # version 1's replica: only the stalled worker keeps it (and version 2's) alive.
            assert all(alive(pid) for pid in retired), "retired while a worker routed to it"
        finally:
            os.kill(stalled, signal.SIGCONT)
    wait_until(
        lambda: not any(alive(pid) for pid in retired),
        timeout=30,
        what="the old replicas to stop once the stalled worker took the new routes",
    )
    answers = [query_fresh(workers.url, workers.token, name, {}) for _ in range(20)]
    assert {a.json()["version"] for a in answers} == {"3"}


def test_private_redis_demo_restart_of_a_killed_worker_and_a_clean_stop(
    make_server: Callable[..., BerthServer],
) -> None:
    """No BERTH_REDIS_URL: the server runs its own redis-server; SIGTERM leaves nothing."""
    server = make_server("--gateway-workers", "2", "--demo")
    assert server.proc is not None
    wait_until(
        lambda: "Demo ready: endpoint iris-demo" in server.log_path.read_text(),
        timeout=120,
        what="berth serve --demo to deploy iris-demo through the workers",
    )
    private_redis = [p for p in children(server.proc.pid) if "redis-server" in command(p)]
    assert len(private_redis) == 1
    assert f"{server.home}/run/redis.sock" in command(private_redis[0])
    with server.client() as api:
        wait_workers(api)
        first = worker_pids(server)
        assert len(first) == 2
        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        wait_until(
            lambda: len(worker_pids(server) - {killed}) == 2,
            timeout=60,
            what="the killed worker to be started again",
        )
        wait_workers(api)
        assert (
            sum(
                v for (n, _), v in scrape(api).items() if n == "berth_gateway_worker_restarts_total"
            )
            == 1
        )
        answers = [query_fresh(server.url, server.token, DEMO, DEMO_QUERY) for _ in range(40)]
        assert {a.status_code for a in answers} == {200}
        assert answers[0].json() == {"predictions": ["setosa", "virginica"]}
        assert all(n > 0 for n in per_worker(scrape(api)).values())

        limits = {"rate_limits": [{"calls": 3, "key": "endpoint", "renewal_period": "minute"}]}
        assert api.put(f"/api/2.0/serving-endpoints/{DEMO}/rate-limits", json=limits).is_success
        wait_until(
            lambda: query_fresh(server.url, server.token, DEMO, DEMO_QUERY).status_code == 429,
            timeout=30,
            what="the limit to refuse queries",
        )
        private = redis.Redis(unix_socket_path=str(server.home / "run" / "redis.sock"))
        with private:
            assert private.keys("berth:rl:*"), "the workers count in the private Redis"

    running = children(server.proc.pid)
    assert any("berth.runtime" in command(p) for p in running)
    server.stop()
    assert [p for p in running if Path(f"/proc/{p}").exists() and command(p)] == []
    assert not (server.home / "run" / "redis.sock").exists()
