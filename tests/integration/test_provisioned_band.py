"""Provisioned throughput on a real server with the real engine (SmolLM2 in llama.cpp): a
load above an open LLM's band queues, is then refused with 429 and Retry-After, while the
autoscaler adds replicas up to the maximum; each request's tokens and timings reach the
metrics and the access log."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.deploy import endpoint, register, unique, wait_ready
from tests.support.llm import smollm2_gguf
from tests.support.metrics import samples, value
from tests.support.net import wait_until
from tests.support.servers import FAST_SCALING, BerthServer

pytestmark = pytest.mark.integration

BAND_QUEUE_S = 2
CHAT = {"messages": [{"role": "user", "content": "Name a color."}], "max_tokens": 64}
"""Reserves 68 tokens (13 bytes of prompt, 64 of max_tokens), so eight clients ask well past
a band of one or two chunks (a chunk counts prompt and completion tokens: about 100 tokens/s
for SmolLM2 here); the answer settles on what the engine counted (its chat template too)."""


@pytest.fixture(scope="module")
def server(make_server: Callable[..., BerthServer]) -> BerthServer:
    """Short scaling delays, so that scaling shows within seconds, and a short band queue."""
    return make_server(
        **{
            **FAST_SCALING,
            "BERTH_AUTOSCALING__DOWNSCALE_DELAY_S": "600",
            "BERTH_AUTOSCALING__BAND_QUEUE_S": str(BAND_QUEUE_S),
        }
    )


@pytest.fixture
def api(server: BerthServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the SmolLM2 GGUF (a link, not a copy: registration copies it)."""
    folder = tmp_path_factory.mktemp("smollm2")
    os.link(smollm2_gguf(), folder / smollm2_gguf().name)
    return folder


@dataclass
class Overload:
    """``clients`` chatting with an endpoint on 127.0.0.1 as fast as they are answered (a
    refused one tries again 0.2 s later), until stopped or ``max_seconds`` have passed."""

    url: str
    token: str
    endpoint: str
    clients: int = 8
    max_seconds: float = 240.0
    answered: int = 0
    refusals: list[tuple[float, dict[str, Any], str | None]] = field(default_factory=list)
    """(when, body, Retry-After) of each 429."""
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Overload:
        for i in range(self.clients):
            thread = threading.Thread(target=self._run, name=f"overload-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        headers = {"Authorization": f"Bearer {self.token}"}
        path = f"/serving-endpoints/{self.endpoint}/invocations"
        with httpx.Client(base_url=self.url, headers=headers, timeout=90) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    answer = client.post(path, json=CHAT)
                except httpx.HTTPError as exc:
                    self.failures.append(f"transport: {exc!r}")
                    continue
                if answer.status_code == 200:
                    self.answered += 1
                elif answer.status_code == 429:
                    retry = answer.headers.get("retry-after")
                    self.refusals.append((time.monotonic(), answer.json(), retry))
                    self._stop.wait(0.2)
                else:
                    self.failures.append(f"{answer.status_code}: {answer.text}")


def entity_of(api: httpx.Client, name: str) -> dict[str, Any]:
    found: dict[str, Any] = endpoint(api, name)["config"]["served_entities"][0]
    return found


def test_a_load_above_the_band_queues_then_is_refused_then_scales_to_the_maximum(
    api: httpx.Client, server: BerthServer, weights: Path
) -> None:
    name = unique("pt")
    assert register(api, name, weights) == "1"
    info = api.get(f"/api/2.0/serving-endpoints/get-model-optimization-info/{name}/1", timeout=300)
    assert info.status_code == 200, info.text
    chunk = info.json()["throughput_chunk_size"]
    assert info.json()["optimizable"] and chunk > 0
    served = {
        "entity_name": name,
        "entity_version": "1",
        "min_provisioned_throughput": chunk,
        "max_provisioned_throughput": 2 * chunk,
        "scale_to_zero_enabled": False,
    }
    config = {"served_entities": [served]}
    created = api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})
    assert created.status_code == 200, created.text
    wait_ready(api, name, timeout=180)
    ready = entity_of(api, name)
    assert (ready["current_replicas"], ready["desired_replicas"]) == (1, 1), "the minimum's"
    logging = {"access_log": True}
    assert api.put(f"/api/2.0/serving-endpoints/{name}/logging", json=logging).is_success

    labels = {"endpoint": name, "served_entity": f"{name}-1"}
    queued: list[float] = []

    def queueing() -> bool:
        found = samples(api.get(f"/api/2.0/serving-endpoints/{name}/metrics").text)
        if value(found, "berth_llm_queue_depth", **labels) > 0:
            queued.append(time.monotonic())
        return bool(queued)

    with Overload(server.url, server.token, name) as load:
        wait_until(queueing, timeout=60, what="requests queueing for the band")
        wait_until(lambda: bool(load.refusals), timeout=60, what="429s past the queue's bound")
        wait_until(
            lambda: entity_of(api, name)["current_replicas"] == 2,
            timeout=180,
            what="the band's maximum: two replicas ready",
        )
        at_maximum = time.monotonic()
    assert load.failures == []
    assert load.answered > 0

    first_refusal = load.refusals[0][0]
    assert first_refusal < at_maximum, "refused while the band was still growing"
    for _, body, retry_after in load.refusals:
        assert body["error_code"] == "REQUEST_LIMIT_EXCEEDED", body
        assert "provisioned throughput" in body["message"]
        assert retry_after is not None and int(retry_after) >= 1
    scaled = entity_of(api, name)
    assert scaled["desired_replicas"] == 2, "never past the maximum"
    assert scaled["provisioned_throughput"]["current_band"] == 2 * chunk

    found = samples(api.get(f"/api/2.0/serving-endpoints/{name}/metrics").text)
    band_wait = {"endpoint": name, "stage": "band_wait"}
    waited = value(found, "berth_request_stage_seconds_count", **band_wait) - value(
        found, "berth_request_stage_seconds_bucket", **band_wait, le="0.25"
    )
    assert waited > 0, "some requests waited in the band's queue"
    for direction in ("in", "out"):
        assert value(found, "berth_tokens_total", **labels, direction=direction) > 0

    def recorded() -> bool:
        """Each answer is recorded once it is out: the last ones a moment after."""
        found = samples(api.get(f"/api/2.0/serving-endpoints/{name}/metrics").text)
        refused = value(found, "berth_requests_total", **labels, status="429")
        timed = value(found, "berth_llm_time_to_first_token_seconds_count", **labels)
        return refused == len(load.refusals) and timed == load.answered

    wait_until(recorded, timeout=10, what="every answer and refusal in the metrics")

    logged = api.get(f"/api/2.0/serving-endpoints/{name}/access-logs", params={"lines": 5000})
    lines = [json.loads(line) for line in logged.json()["logs"].splitlines()]
    answered = [line for line in lines if line["status"] == 200]
    assert answered and all(
        line["prompt_tokens"] > 0 and 0 < line["completion_tokens"] <= 64 and line["ttft_ms"] > 0
        for line in answered
    )
    assert api.delete(f"/api/2.0/serving-endpoints/{name}").status_code == 200
