"""Outbound calls cannot be turned on the inside, and an endpoint's sealed provider keys go
nowhere their sender did not send them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from berth.core.dataplane import Snapshot
from berth.secrets import SecretCipher, load_key
from berth.secrets.sealed_snapshot import open_externals
from berth.settings import Settings
from tests.fakes.llm_server import FakeLlmServer
from tests.support.deploy import wait_ready
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration
BASE = "/api/2.0/serving-endpoints"


def chat(base: str, key: str) -> dict[str, Any]:
    config = {"openai_api_key_plaintext": key, "openai_api_base": base}
    model = {"name": "gpt-x", "provider": "openai", "task": "llm/v1/chat", "openai_config": config}
    return {"served_entities": [{"name": "gpt", "external_model": model}]}


def create(api: httpx.Client, config: dict[str, Any]) -> httpx.Response:
    return api.post(BASE, json={"name": f"eg-{uuid.uuid4().hex[:8]}", "config": config})


def test_provider_urls_must_be_public_https_unless_the_operator_allows_them(
    make_server: Callable[..., BerthServer], llm_server: FakeLlmServer
) -> None:
    strict = make_server(BERTH_PROVIDERS__ALLOWED_HOSTS="")
    with strict.client() as api:
        for base, says in (
            (f"{llm_server.url}/v1", "https"),  # http://127.0.0.1:PORT
            ("https://localhost/v1", "internal address"),
            ("https://169.254.169.254/v1", "internal address"),
            ("https://192.168.1.10/v1", "internal address"),
        ):
            refused = create(api, chat(base, llm_server.api_key))
            assert refused.status_code == 400, (base, refused.text)
            assert says in refused.json()["message"]
            assert "openai_api_base" in refused.json()["message"]


def test_a_changed_provider_url_needs_the_key_again(
    api: httpx.Client, llm_server: FakeLlmServer
) -> None:
    made = create(api, chat(f"{llm_server.url}/v1", llm_server.api_key))
    assert made.status_code == 200, made.text
    name = made.json()["name"]
    live = wait_ready(api, name)["config"]
    sealed = live["served_entities"][0]["external_model"]["openai_config"]["openai_api_key"]
    assert sealed.startswith("{{secrets/berth-endpoint-")
    elsewhere = {"openai_api_key": sealed, "openai_api_base": "http://127.0.0.1:9/v1"}
    moved = chat("", "")
    moved["served_entities"][0]["external_model"]["openai_config"] = elsewhere
    refused = api.put(f"{BASE}/{name}/config", json=moved)
    assert refused.status_code == 400, refused.text
    assert "give the key again" in refused.json()["message"]
    # The same URL keeps its sealed key; a new URL with a new key is fine.
    same = {"openai_api_key": sealed, "openai_api_base": f"{llm_server.url}/v1"}
    kept = chat("", "")
    kept["served_entities"][0]["external_model"]["openai_config"] = same
    assert api.put(f"{BASE}/{name}/config", json=kept).status_code == 200
    wait_ready(api, name)
    rekeyed = api.put(f"{BASE}/{name}/config", json=chat("http://127.0.0.1:9/v1", "sk-other"))
    assert rekeyed.status_code == 200, rekeyed.text


def test_berths_own_secret_scopes_cannot_be_squatted_or_borrowed(
    api: httpx.Client, llm_server: FakeLlmServer
) -> None:
    made = create(api, chat(f"{llm_server.url}/v1", llm_server.api_key))
    assert made.status_code == 200, made.text
    scope = f"berth-endpoint-{made.json()['id']}"
    squat = api.post("/api/2.0/secrets/scopes/create", json={"scope": "berth-endpoint-mine"})
    assert squat.status_code == 403, squat.text  # not even an admin
    put = {"scope": scope, "key": "v1.gpt.openai_api_key", "string_value": "sk-attacker"}
    assert api.post("/api/2.0/secrets/put", json=put).status_code == 403
    acl = {"scope": scope, "principal": "users", "permission": "READ"}
    assert api.post("/api/2.0/secrets/acls/put", json=acl).status_code == 403
    borrow = chat("http://127.0.0.1:9/v1", "")
    borrowed = {"openai_api_key": f"{{{{secrets/{scope}/v1.gpt.openai_api_key}}}}"}
    borrowed["openai_api_base"] = "http://127.0.0.1:9/v1"
    borrow["served_entities"][0]["external_model"]["openai_config"] = borrowed
    refused = create(api, borrow)
    assert refused.status_code == 403, refused.text
    assert "sealed provider keys" in refused.json()["message"]


def test_the_data_plane_snapshot_carries_provider_keys_sealed(
    api: httpx.Client, server: BerthServer, llm_server: FakeLlmServer
) -> None:
    """Gateway processes get the keys (they hold the server's secret key); no HTTP answer
    shows one, not even to an admin."""
    made = create(api, chat(f"{llm_server.url}/v1", llm_server.api_key))
    assert made.status_code == 200, made.text
    name = made.json()["name"]
    wait_ready(api, name)
    seen = api.get("/api/2.0/berth/data-plane", params={"timeout": 0})
    assert seen.status_code == 200
    assert name in seen.text and llm_server.api_key not in seen.text
    cipher = SecretCipher(load_key(Settings(home=server.home)))
    opened = Snapshot.from_json(open_externals(seen.json(), cipher))
    (entity,) = opened.endpoints[name].entities
    assert llm_server.api_key in json.dumps(entity.external)
