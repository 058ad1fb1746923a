"""An open LLM (a GGUF file) registered, deployed and answered by a real engine (llama.cpp,
through xllamacpp) behind berth's gateway: the OpenAI SDK, Databricks bodies, streams, and a
version swap that drops no stream."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.deploy import entity, register, unique, wait_ready, wait_settled
from tests.support.llm import smollm2_embedder, smollm2_gguf
from tests.support.net import wait_until
from tests.support.servers import FAST_SCALING, BerthServer

pytestmark = pytest.mark.integration

CHAT = [{"role": "user", "content": "Name three colors."}]
COLD_START_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def server(make_server: Callable[..., BerthServer]) -> BerthServer:
    """Short scaling delays, so that scale to zero shows within seconds."""
    return make_server(
        **FAST_SCALING, BERTH_AUTOSCALING__COLD_START_TIMEOUT_S=str(COLD_START_TIMEOUT_S)
    )


@pytest.fixture
def api(server: BerthServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def sdk(server: BerthServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{server.url}/serving-endpoints", api_key=server.token, max_retries=0
    ) as client:
        yield client


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the SmolLM2 GGUF (a link, not a copy: registration copies it)."""
    folder = tmp_path_factory.mktemp("smollm2")
    os.link(smollm2_gguf(), folder / smollm2_gguf().name)
    return folder


@pytest.fixture(scope="module")
def llm(server: BerthServer, weights: Path) -> str:
    """A model with two versions of the same weights, and an endpoint of the same name
    serving version 1."""
    name = unique("smol")
    with server.client() as api:
        assert register(api, name, weights) == "1"
        assert register(api, name, weights) == "2"
        config = {"served_entities": [entity(name, "1", scale_to_zero_enabled=False)]}
        created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
        assert created.status_code == 200, created.text
        wait_ready(api, name, timeout=180)
    return name


def events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.split("\n\n") if line.startswith("data: ")]


def test_a_gguf_registers_as_an_open_llm(api: httpx.Client, llm: str) -> None:
    version = api.get(f"/api/2.0/models/{llm}/versions/1").json()["model_version"]
    assert version["format"] == "gguf"


def test_the_openai_sdk_chats_plain_and_streamed_and_completes(
    api: httpx.Client, sdk: openai.OpenAI, llm: str
) -> None:
    answer = sdk.chat.completions.create(model=llm, messages=CHAT, max_tokens=12)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    assert answer.usage is not None
    assert 0 < answer.usage.completion_tokens <= 12 and answer.usage.prompt_tokens > 5

    chunks = list(
        sdk.chat.completions.create(model=llm, messages=CHAT, max_tokens=12, stream=True)  # type: ignore[arg-type]
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    [usage] = [c.usage for c in chunks if c.usage is not None]
    assert 0 < usage.completion_tokens <= 12

    completion = sdk.completions.create(model=llm, prompt="The sky is", max_tokens=6)
    assert completion.choices[0].text
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 6


def test_databricks_bodies_on_invocations_answer_with_usage(api: httpx.Client, llm: str) -> None:
    chat = api.post(
        f"/serving-endpoints/{llm}/invocations", json={"messages": CHAT, "max_tokens": 8}
    )
    assert chat.status_code == 200, chat.text
    assert chat.headers["served-model-name"] == f"{llm}-1"
    assert chat.json()["usage"]["completion_tokens"] > 0

    completions = api.post(
        f"/serving-endpoints/{llm}/invocations", json={"prompt": "One, two,", "max_tokens": 4}
    )
    assert completions.status_code == 200, completions.text
    assert completions.json()["choices"][0]["text"]

    streamed = api.post(
        f"/serving-endpoints/{llm}/invocations",
        json={"messages": CHAT, "max_tokens": 8, "stream": True},
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    data = events(streamed.text)
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["usage"]["completion_tokens"] > 0


def test_bodies_an_llm_cannot_take_are_clear_400s(api: httpx.Client, llm: str) -> None:
    tabular = api.post(f"/serving-endpoints/{llm}/invocations", json={"inputs": [[1, 2]]})
    assert tabular.status_code == 400
    assert tabular.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "`messages`" in tabular.json()["message"]

    refused = api.post(f"/serving-endpoints/{llm}/invocations", json={"messages": "hello"})
    assert refused.status_code == 400
    assert refused.json()["error_code"] == "BAD_REQUEST"
    assert "messages" in refused.json()["message"]


class Streams:
    """Clients streaming chats from an endpoint until stopped; every stream must end whole."""

    def __init__(self, url: str, token: str, endpoint: str, clients: int = 4) -> None:
        self.url, self.token, self.endpoint = url, token, endpoint
        self.whole: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Streams:
        for thread in self._threads:
            thread.start()
        wait_until(lambda: sum(self.whole.values()) >= 2, timeout=60, what="streams to flow")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self) -> None:
        body = {"messages": CHAT, "max_tokens": 24, "stream": True}
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=60) as client:
            while not self._stop.is_set():
                try:
                    self._one(client, body)
                except httpx.HTTPError as exc:
                    self.failures.append(f"transport: {exc!r}")

    def _one(self, client: httpx.Client, body: dict[str, object]) -> None:
        path = f"/serving-endpoints/{self.endpoint}/invocations"
        with client.stream("POST", path, json=body) as answer:
            text = "".join(answer.iter_text())
            served = answer.headers.get("served-model-name", "?")
        data = events(text)
        if answer.status_code != 200 or data[-1:] != ["[DONE]"]:
            self.failures.append(f"{answer.status_code} from {served}: {text[-300:]}")
        elif not any('"usage"' in event for event in data) or '"error"' in text:
            self.failures.append(f"a stream from {served} ended without its usage: {text[-300:]}")
        else:
            self.whole[served] += 1


def test_a_version_swap_under_streaming_load_drops_no_stream(
    api: httpx.Client, server: BerthServer, llm: str
) -> None:
    with Streams(server.url, server.token, llm) as streams:
        put = api.put(
            f"/api/2.0/serving-endpoints/{llm}/config",
            json={"served_entities": [entity(llm, "2", scale_to_zero_enabled=False)]},
        )
        assert put.status_code == 200, put.text
        assert wait_settled(api, llm, timeout=180)["state"]["config_update"] == "NOT_UPDATING"
        wait_until(
            lambda: streams.failures or streams.whole[f"{llm}-2"] >= 4,
            timeout=60,
            what="streams from version 2",
        )
    assert streams.failures == []
    assert streams.whole[f"{llm}-1"] > 0 and streams.whole[f"{llm}-2"] >= 4


def served(api: httpx.Client, name: str) -> dict[str, dict[str, object]]:
    detail = api.get(f"/api/2.0/serving-endpoints/{name}").json()
    return {e["name"]: e for e in detail["config"]["served_entities"]}


def test_two_versions_split_traffic_scale_to_zero_and_wake(api: httpx.Client, llm: str) -> None:
    name = unique("split")
    idle = {"scale_to_zero_enabled": True, "scale_to_zero_idle_seconds": 1}
    config = {
        "served_entities": [entity(llm, "1", **idle), entity(llm, "2", **idle)],
        "traffic_config": {
            "routes": [
                {"served_model_name": f"{llm}-1", "traffic_percentage": 50},
                {"served_model_name": f"{llm}-2", "traffic_percentage": 50},
            ]
        },
    }
    created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert created.status_code == 200, created.text
    wait_ready(api, name, timeout=180)
    seen: Counter[str] = Counter()
    body = {"messages": CHAT, "max_tokens": 2}
    for _ in range(16):
        answer = api.post(f"/serving-endpoints/{name}/invocations", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        seen[answer.headers["served-model-name"]] += 1
    assert set(seen) == {f"{llm}-1", f"{llm}-2"}, seen

    wait_until(
        lambda: all(e["current_replicas"] == 0 for e in served(api, name).values()),
        timeout=60,
        what="both versions to scale to zero",
    )
    started = time.monotonic()
    woken = api.post(f"/serving-endpoints/{name}/invocations", json=body, timeout=60)
    assert woken.status_code == 200, woken.text
    assert woken.json()["usage"]["completion_tokens"] > 0
    assert time.monotonic() - started < COLD_START_TIMEOUT_S
    assert api.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200


def test_an_embedding_gguf_embeds_through_the_openai_sdk_and_invocations(
    api: httpx.Client, sdk: openai.OpenAI, tmp_path: Path
) -> None:
    """A GGUF whose header declares a pooling type is an embedding model: llama.cpp starts in
    embedding mode and answers /v1/embeddings, and it has no throughput chunk."""
    smollm2_embedder(tmp_path)
    name = unique("embed")
    assert register(api, name, tmp_path) == "1"
    version = api.get(f"/api/2.0/models/{name}/versions/1").json()["model_version"]
    assert version["details"]["task"] == "llm/v1/embeddings"
    assert version["details"]["pooling_type"] == 1
    config = {"served_entities": [entity(name, "1", scale_to_zero_enabled=False)]}
    created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert created.status_code == 200, created.text
    wait_ready(api, name, timeout=180)

    # The SDK asks for base64 vectors and decodes them; berth encodes the engine's floats.
    answer = sdk.embeddings.create(model=name, input=["a red apple", "a tax return"])
    first, second = (item.embedding for item in answer.data)
    assert len(first) == len(second) == version["details"]["embedding_length"] == 576
    assert first != second
    assert answer.usage.prompt_tokens >= 4

    plain = api.post(f"/serving-endpoints/{name}/invocations", json={"input": "a red apple"})
    assert plain.status_code == 200, plain.text
    again = plain.json()["data"][0]["embedding"]
    assert all(math.isclose(a, b, abs_tol=1e-3) for a, b in zip(again, first, strict=True))

    info = api.get(f"/api/2.0/serving-endpoints/get-model-optimization-info/{name}/1")
    assert info.status_code == 200 and info.json() == {"optimizable": False}, info.text
    assert api.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200
