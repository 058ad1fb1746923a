"""Providers built from Databricks external_model blocks resolve their secret references."""

from __future__ import annotations

import asyncio

import pytest

from berth.providers import provider_for
from tests.fakes.llm_server import FakeLlmServer
from tests.support.providers import chat, options

pytestmark = pytest.mark.integration


def test_secret_references_are_resolved_through_the_callable(llm_server: FakeLlmServer) -> None:
    asked: list[str] = []

    def secrets(reference: str) -> str:
        asked.append(reference)
        return llm_server.api_key

    config = {"anthropic_api_key": "{{secrets/llm/claude}}", "anthropic_api_base": llm_server.url}
    model = {"name": "claude", "provider": "anthropic", "anthropic_config": config}
    provider = provider_for(model, secrets, options())

    async def scenario() -> None:
        try:
            await provider.chat(chat("k"))
        finally:
            await provider.aclose()

    asyncio.run(scenario())
    assert asked == ["{{secrets/llm/claude}}"]
    assert provider.name == "anthropic"
