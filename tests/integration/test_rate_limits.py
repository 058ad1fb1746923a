"""Rate limits are exact under concurrency: in one gateway, across two gateway processes
sharing a real Redis server, per user, and for tokens (reserved at admission, settled after)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.llm_server import FakeLlmServer
from tests.support.deploy import ECHO, deploy, unique, wait_ready
from tests.support.identity import make_user
from tests.support.load import CLIENTS, hammer
from tests.support.net import free_port, wait_until
from tests.support.redis import RedisServer
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


def limited_endpoint(api: httpx.Client, limits: list[dict[str, Any]]) -> str:
    return deploy(api, ECHO, prefix="lim", ai_gateway={"rate_limits": limits})


def wait_limited(api: httpx.Client, name: str) -> None:
    """Until the data plane's route for ``name`` carries its rate limits."""
    version = -1

    def routed() -> bool:
        nonlocal version
        snapshot = api.get("/api/2.0/berth/data-plane", params={"after": version, "timeout": 1})
        version = snapshot.json()["version"]
        return any(r["name"] == name and r["rate_limits"] for r in snapshot.json()["endpoints"])

    wait_until(routed, timeout=30, what=f"{name}'s rate limits to reach the data plane")


def test_calls_per_minute_are_exact_under_32_concurrent_clients(
    api: httpx.Client, server: BerthServer
) -> None:
    name = limited_endpoint(api, [{"calls": 100, "key": "endpoint", "renewal_period": "minute"}])
    answers = hammer([server.url], server.token, name, 300)
    assert Counter(a.status_code for a in answers) == {200: 100, 429: 200}
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    # The oldest of the 100 admitted calls leaves the 60 s window a minute after the burst.
    assert 50 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-limit-requests"] == "100"
    admitted = next(a for a in answers if a.status_code == 200)
    assert int(admitted.headers["x-ratelimit-remaining-requests"]) < 100


def queryable(client: httpx.Client, name: str) -> Callable[[], bool]:
    """Whether the data plane behind ``client`` lets its caller query ``name`` (free of quota)."""

    def check() -> bool:
        listed = client.get("/serving-endpoints/models").json()["data"]
        return name in [model["id"] for model in listed]

    return check


def test_per_user_limits_count_each_user_apart(api: httpx.Client, server: BerthServer) -> None:
    name = limited_endpoint(api, [{"calls": 3, "key": "user", "renewal_period": "minute"}])
    endpoint_id = api.get(f"/api/2.0/serving-endpoints/{name}").json()["id"]
    user_names = [unique("u") for _ in range(2)]
    users = [make_user(api, server, user)[1] for user in user_names]
    grant = [{"user_name": user, "permission_level": "CAN_QUERY"} for user in user_names]
    path = f"/api/2.0/permissions/serving-endpoints/{endpoint_id}"
    assert api.patch(path, json={"access_control_list": grant}).is_success
    try:
        for client in users:
            wait_until(queryable(client, name), timeout=30, what="the grant to reach the gateway")
            statuses = [
                client.post(f"/serving-endpoints/{name}/invocations", json={}).status_code
                for _ in range(5)
            ]
            assert statuses == [200, 200, 200, 429, 429]
    finally:
        for client in users:
            client.close()


@pytest.fixture
def two_gateways(
    make_server: Callable[..., BerthServer], redis_server: RedisServer, tmp_path: Path
) -> Iterator[tuple[BerthServer, list[str]]]:
    """A berth server and a stand-alone ``berth gateway`` process, sharing one Redis."""
    server = make_server(BERTH_REDIS_URL=redis_server.url)
    port = free_port()
    env = {**server.env(), "BERTH_TOKEN": server.token, "BERTH_REDIS_URL": redis_server.url}
    with (tmp_path / "gateway.log").open("ab") as log:
        gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "berth",
                "gateway",
                "--control-url",
                server.url,
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert gateway.poll() is None, (tmp_path / "gateway.log").read_text()
        try:
            return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout=60, what="the gateway process to follow the server")
        yield server, [server.url, url]
    finally:
        os.killpg(gateway.pid, signal.SIGTERM)
        gateway.wait(timeout=30)


def test_two_gateway_processes_sharing_redis_enforce_one_limit(
    two_gateways: tuple[BerthServer, list[str]],
) -> None:
    server, urls = two_gateways
    with server.client() as api:
        name = limited_endpoint(
            api, [{"calls": 100, "key": "endpoint", "renewal_period": "minute"}]
        )
        wait_limited(api, name)
        with server.client() as other:
            other.base_url = httpx.URL(urls[1])
            wait_until(queryable(other, name), timeout=30, what="the gateway process to follow")
        answers = hammer(urls, server.token, name, 300)
    by_gateway = Counter((a.url.port, a.status_code) for a in answers)
    assert sum(n for (_, status), n in by_gateway.items() if status == 200) == 100
    admitted_by = {port for (port, status) in by_gateway if status == 200}
    assert admitted_by == {httpx.URL(u).port for u in urls}, by_gateway


def test_a_token_limit_overshoots_by_at_most_one_requests_max_tokens(
    api: httpx.Client, llm_server: FakeLlmServer
) -> None:
    name = unique("tok")
    external = {
        "name": "gpt",
        "provider": "openai",
        "task": "llm/v1/chat",
        "openai_config": {
            "openai_api_key_plaintext": llm_server.api_key,
            "openai_api_base": f"{llm_server.url}/v1",
        },
    }
    body = {
        "name": name,
        "config": {"served_entities": [{"external_model": external}]},
        "ai_gateway": {
            "rate_limits": [{"tokens": 400, "key": "endpoint", "renewal_period": "minute"}]
        },
    }
    assert api.post("/api/2.0/serving-endpoints", json=body).status_code == 200
    wait_ready(api, name)
    wait_limited(api, name)
    max_tokens = 20
    prompt = " ".join(f"w{i}" for i in range(30))  # 30 prompt tokens, 20 completion at most
    chat = {
        "model": name,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
    }

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(
            pool.map(
                lambda _: api.post("/serving-endpoints/chat/completions", json=chat), range(60)
            )
        )
    admitted = [a.json()["usage"]["total_tokens"] for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert admitted and refused
    assert sum(admitted) <= 400 + max_tokens
    assert refused[0].headers["x-ratelimit-limit-tokens"] == "400"
    assert "tokens" in refused[0].json()["message"]
