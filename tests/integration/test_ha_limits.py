"""Two ``berth serve`` on one PostgreSQL and one Redis: a user's rate limit holds exactly across
them. Without Redis each server counts on its own, and the two admit the limit twice over."""

from __future__ import annotations

from collections import Counter
from functools import partial

import httpx
import pytest

from tests.support.deploy import ECHO, deploy, unique
from tests.support.ha import StartServers
from tests.support.identity import make_user
from tests.support.load import hammer
from tests.support.net import wait_until
from tests.support.redis import RedisServer
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

CALLS = 20
"""The user's limit, per minute."""
QUERIES = 60
"""Sent half to each server: either alone could admit the whole limit."""


def routes_for_user(server: BerthServer, token: str, name: str) -> bool:
    """Whether ``server``'s gateway has a replica for ``name`` and lets the user query it,
    asked without a query (one would spend the limit)."""
    with server.client() as admin:
        snapshot = admin.get("/api/2.0/berth/data-plane").json()
    with server.client(token) as user:
        listed = user.get("/serving-endpoints/models")
    routed = [r for r in snapshot["endpoints"] if r["name"] == name]
    return (
        listed.status_code == 200
        and name in [model["id"] for model in listed.json()["data"]]
        and len(routed) == 1
        and all(entity["replicas"] for entity in routed[0]["entities"])
    )


def limited_for_a_user(servers: list[BerthServer]) -> tuple[str, str, str]:
    """An endpoint made through the leader with a limit of CALLS per minute per user, and a
    user who may query it, routed by every server: (endpoint, user, the user's token)."""
    leader = servers[0]
    limit = {"calls": CALLS, "key": "user", "renewal_period": "minute"}
    user = unique("u")
    with leader.client() as api:
        name = deploy(api, ECHO, prefix="halim", ai_gateway={"rate_limits": [limit]})
        endpoint_id = api.get(f"/api/2.0/serving-endpoints/{name}").json()["id"]
        _, client = make_user(api, leader, user)
        grant = [{"user_name": user, "permission_level": "CAN_QUERY"}]
        path = f"/api/2.0/permissions/serving-endpoints/{endpoint_id}"
        assert api.patch(path, json={"access_control_list": grant}).is_success
    with client:
        token = client.headers["Authorization"].removeprefix("Bearer ")
    for server in servers:
        wait_until(
            partial(routes_for_user, server, token, name),
            timeout=30,
            what=f"{server.url} to route {name} for {user}",
        )
    return name, user, token


def burst(servers: list[BerthServer], token: str, name: str) -> list[httpx.Response]:
    """QUERIES at once from many clients, half to each server."""
    answers = hammer([s.url for s in servers], token, name, QUERIES)
    assert Counter(a.url.port for a in answers) == {s.port: QUERIES // 2 for s in servers}
    seen = Counter((a.url.port, a.status_code) for a in answers)
    print(f"\n{QUERIES} queries, {CALLS} per minute allowed: (port, status) {dict(seen)}")
    return answers


def refusals(answers: list[httpx.Response]) -> list[dict[str, str]]:
    return [a.json() for a in answers if a.status_code == 429]


def test_a_users_limit_is_exact_across_two_servers_sharing_redis(
    ha_servers: StartServers, redis_server: RedisServer
) -> None:
    servers = ha_servers(BERTH_REDIS_URL=redis_server.url)
    name, user, token = limited_for_a_user(servers)
    answers = burst(servers, token, name)
    assert Counter(a.status_code for a in answers) == {200: CALLS, 429: QUERIES - CALLS}
    refused = refusals(answers)
    assert {r["error_code"] for r in refused} == {"REQUEST_LIMIT_EXCEEDED"}
    assert all(f"user '{user}': {CALLS} calls per minute" in r["message"] for r in refused)


def test_without_redis_each_server_counts_alone_and_admits_the_limit_again(
    ha_servers: StartServers,
) -> None:
    """Why servers that share a store must share a Redis too."""
    servers = ha_servers()
    name, _, token = limited_for_a_user(servers)
    answers = burst(servers, token, name)
    each = {200: CALLS, 429: QUERIES // 2 - CALLS}
    assert Counter((a.url.port, a.status_code) for a in answers) == {
        (s.port, status): n for s in servers for status, n in each.items()
    }
    assert {r["error_code"] for r in refusals(answers)} == {"REQUEST_LIMIT_EXCEEDED"}
