"""A gateway in another process follows the controller's snapshots over HTTP long-poll."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path

import httpx
import pytest

from berth.core.dataplane import SnapshotBus
from berth.gateway.subscriber import Subscriber
from berth.secrets import SecretCipher, load_key
from berth.settings import Settings
from tests.support.deploy import entity, register, versioned_artifact, wait_ready
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


def test_subscriber_sees_routes_and_tokens_change(
    api: httpx.Client, server: BerthServer, tmp_path: Path
) -> None:
    name = f"chan-{uuid.uuid4().hex[:6]}"
    version = register(api, name, versioned_artifact(tmp_path, "1"))
    bus = SnapshotBus()
    key = load_key(Settings(home=server.home))  # the server's key, as gateway processes read it
    subscriber = Subscriber(server.url, server.token, bus, SecretCipher(key), poll_s=10)

    async def follow() -> None:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {server.token}"}) as http:
            first = await subscriber.follow_once(http)
            assert hashlib.sha256(server.token.encode()).hexdigest() in first.tokens
            assert name not in first.endpoints
            created = api.post(
                "/api/2.0/serving-endpoints",
                json={"name": name, "config": {"served_entities": [entity(name, version)]}},
            )
            assert created.status_code == 200
            wait_ready(api, name)
            async with asyncio.timeout(30):
                while not (route := bus.current.endpoints.get(name)) or not route.serving:
                    await subscriber.follow_once(http)
            replicas = bus.current.endpoints[name].entities[0].replicas
            socket = replicas[0].address.removeprefix("unix:")
            with httpx.Client(transport=httpx.HTTPTransport(uds=socket)) as replica:
                answer = replica.post("http://replica/invocations", json={})
            assert answer.json()["version"] == "1"

    asyncio.run(follow())


def test_the_channel_needs_a_token(server: BerthServer) -> None:
    answer = httpx.get(f"{server.url}/api/2.0/berth/data-plane", params={"timeout": 0})
    assert answer.status_code == 401
