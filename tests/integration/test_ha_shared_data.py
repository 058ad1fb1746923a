"""Two ``berth serve`` on one PostgreSQL with one ``BERTH_SHARED_DIR``: payloads and access
lines of requests answered by either server read back, whole and in time order, through
either."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.deploy import ECHO, entity, register, unique, wait_ready
from tests.support.ha import StartServers
from tests.support.net import wait_until
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


@pytest.fixture
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shared-data")


@pytest.fixture
def servers(ha_servers: StartServers, shared: Path) -> list[BerthServer]:
    return ha_servers(BERTH_SHARED_DIR=str(shared))


def query(server: BerthServer, name: str, request_id: str) -> bool:
    with server.client() as api:
        answer = api.post(
            f"/serving-endpoints/{name}/invocations",
            json={"inputs": [1]},
            headers={"x-request-id": request_id},
        )
    return answer.status_code == 200


def access_ids(server: BerthServer, name: str) -> list[str]:
    with server.client() as api:
        answer = api.get(f"/api/2.0/serving-endpoints/{name}/access-logs", params={"lines": 1000})
    assert answer.status_code == 200, answer.text
    return [json.loads(line)["request_id"] for line in answer.json()["logs"].splitlines()]


def payload_ids(server: BerthServer, name: str) -> set[str]:
    with server.client() as api:
        answer = api.get(f"/api/2.0/serving-endpoints/{name}/payloads", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["payloads"]
    return {row["request_id"] for row in rows}


def test_payloads_and_access_logs_of_either_server_read_back_through_both(
    servers: list[BerthServer], shared: Path
) -> None:
    a, b = servers
    name = unique("shared")
    with a.client() as api:
        register(api, name, ECHO)
        config = {"served_entities": [entity(name, "1", scale_to_zero_enabled=False)]}
        capture = {"inference_table_config": {"enabled": True}}
        body = {"name": name, "config": config, "ai_gateway": capture}
        assert api.post("/api/2.0/serving-endpoints", json=body).status_code == 200
        endpoint_id = wait_ready(api, name)["id"]
        logging = {"access_log": True}
        assert api.put(f"/api/2.0/serving-endpoints/{name}/logging", json=logging).is_success
    probes = iter(range(1000))
    for server in servers:  # each gateway holds the route with its access log on

        def logs_its_own(server: BerthServer = server) -> bool:
            probe = f"probe-{next(probes)}"
            return query(server, name, probe) and probe in access_ids(server, name)

        wait_until(logs_its_own, timeout=30, what=f"{server.url} to log its own queries")

    sent = [f"{'ab'[i % 2]}-{i}" for i in range(10)]
    for i, request_id in enumerate(sent):
        assert query(servers[i % 2], name, request_id)

    def both_see_all() -> bool:
        return all(
            set(sent) <= payload_ids(server, name)
            and [i for i in access_ids(server, name) if not i.startswith("probe-")] == sent
            for server in servers
        )

    wait_until(both_see_all, timeout=30, what="a and b to read every request, in order")
    assert list((shared / "logs" / endpoint_id).glob("access-*.log"))
    assert list((shared / "inference" / endpoint_id).rglob("part-*.parquet"))
    assert not any((s.home / "logs").exists() or (s.home / "inference").exists() for s in servers)
    assert [(shared / part).stat().st_mode & 0o777 for part in ("logs", "inference")] == [0o700] * 2
