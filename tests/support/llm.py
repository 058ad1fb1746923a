"""The fake LLM provider as a pytest fixture: a fresh server per test, stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.llm_server import FakeLlmServer


@pytest.fixture
def llm_server() -> Iterator[FakeLlmServer]:
    server = FakeLlmServer().start()
    yield server
    server.stop()
