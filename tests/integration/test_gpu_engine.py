"""The GPU path of open LLMs: a Hugging Face-style folder, served by vLLM where the model's
environment has it, else by transformers' continuous batching.

This host has no GPU, so what always runs is what the control plane refuses. The engine itself
runs when ``BERTH_TEST_TORCH_PYTHON`` names a Python with torch and transformers (about 3 GB,
which CI does not download): the server is told GPU 0 is its to give (there is no such device
here, so torch falls back to the CPUs), and SmolLM2, converted from the suite's GGUF, answers
through the OpenAI SDK."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.deploy import entity, register, unique, wait_ready
from tests.support.hf import TORCH_PYTHON, smollm2_folder, tiny_folder
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


def _create(api: httpx.Client, name: str, **fields: str) -> httpx.Response:
    config = {"served_entities": [entity(name, "1", **fields)]}
    return api.post("/api/2.0/serving-endpoints", json={"name": name, "config": config})


def test_a_folder_registers_and_its_endpoint_needs_a_gpu_type_and_a_gpu(
    api: httpx.Client, tmp_path: Path
) -> None:
    name = unique("hf")
    assert register(api, name, tiny_folder(tmp_path / "tiny")) == "1"
    version = api.get(f"/api/2.0/models/{name}/versions/1").json()["model_version"]
    assert version["format"] == "huggingface"
    assert version["details"]["architecture"] == "LlamaForCausalLM"
    assert version["details"]["parameter_count"] == 16 * 8 + 8

    on_cpus = _create(api, name)
    assert on_cpus.status_code == 400, on_cpus.text
    assert on_cpus.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Hugging Face-style folder" in on_cpus.json()["message"]
    assert "GPU_SMALL" in on_cpus.json()["message"]

    no_gpu = _create(api, name, workload_type="GPU_SMALL")
    assert no_gpu.status_code == 400, no_gpu.text
    assert "this host has none" in no_gpu.json()["message"]
    assert api.get(f"/api/2.0/serving-endpoints/{name}").status_code == 404


@pytest.mark.skipif(not os.environ.get(TORCH_PYTHON), reason=f"{TORCH_PYTHON} is not set")
def test_transformers_serves_a_folder_through_the_openai_sdk(
    make_server: Callable[..., BerthServer], tmp_path: Path
) -> None:
    server = make_server(BERTH_REPLICAS__GPUS="0")
    name = unique("hf")
    with server.client() as api:
        assert register(api, name, smollm2_folder(tmp_path / "smollm2")) == "1"
        created = _create(api, name, workload_type="GPU_SMALL", scale_to_zero_enabled=False)  # type: ignore[arg-type]
        assert created.status_code == 200, created.text
        wait_ready(api, name, timeout=900)  # the first build installs torch
    with openai.OpenAI(
        base_url=f"{server.url}/serving-endpoints", api_key=server.token, max_retries=0
    ) as sdk:
        messages = [{"role": "user", "content": "Name a cat breed."}]
        answer = sdk.chat.completions.create(model=name, messages=messages, max_tokens=8)  # type: ignore[arg-type]
        assert answer.choices[0].message.content
        assert answer.usage is not None and answer.usage.completion_tokens == 8
        stream = sdk.completions.create(model=name, prompt="The sky is", max_tokens=5, stream=True)
        chunks = list(stream)
        assert "".join(c.choices[0].text for c in chunks if c.choices).strip()
        [usage] = [c.usage for c in chunks if c.usage is not None]
        assert usage.completion_tokens == 5
