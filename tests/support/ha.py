"""Servers of one HA deployment: several ``berth serve`` on one fresh PostgreSQL database,
and what each says of who leads."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from tests.support.net import wait_until
from tests.support.postgres import PostgresCluster
from tests.support.replicas import no_replicas_under
from tests.support.servers import BerthServer

StartServers = Callable[..., list[BerthServer]]
"""``start(**env)``: two servers started with ``env`` besides what they must share."""


def leader(server: BerthServer) -> dict[str, Any]:
    """``GET /api/2.0/berth/leader`` through ``server``: who leads, and whether it does."""
    with server.client() as api:
        answer = api.get("/api/2.0/berth/leader")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture
def ha_servers(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory, bubblewrap: str
) -> Iterator[StartServers]:
    """Starts two servers on one fresh database, sharing the secret key as servers of one
    store must; each has a home of its own, and the first started leads. All are stopped at
    the end, last started first, and their replicas waited out."""
    started: list[BerthServer] = []

    def start(**env: str) -> list[BerthServer]:
        url = postgres.new_database()
        key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        pair = [
            BerthServer(
                home=tmp_path_factory.mktemp(f"ha-{name}"),
                database_url=url,
                extra_env={"BERTH_SECRET_KEY": key, **env},
            )
            for name in ("a", "b")
        ]
        started.extend(pair)
        for server in pair:
            server.start()
        return pair

    try:
        yield start
    finally:
        # Followers first, so that none takes the lease over from the stopping leader and
        # begins leading as it stops (one that did took 15 s to stop).
        for server in reversed(started):
            if server.proc is not None:
                server.stop()
        for server in started:
            wait_until(
                partial(no_replicas_under, server.home),
                timeout=20,
                what=f"the replicas of {server.home} to stop",
            )
