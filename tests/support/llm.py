"""The fake LLM provider, and the official OpenAI client pointed at berth, as fixtures."""

from __future__ import annotations

from collections.abc import Iterator

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
