"""Building providers from Databricks external_model blocks."""

from __future__ import annotations

import asyncio

import pytest

from berth.core.errors import InvalidParameter
from berth.providers import provider_for
from tests.fakes.llm_server import FakeLlmServer
from tests.unit.providers.support import chat, no_secrets, options


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


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"provider": "cohere", "cohere_config": {}}, "not supported by berth yet"),
        ({"provider": "openai"}, "needs its openai_config block"),
        ({"provider": "openai", "openai_config": {}}, "openai_api_key or openai_api_key_plaintext"),
        (
            {
                "provider": "openai",
                "openai_config": {"openai_api_key_plaintext": "k", "openai_api_type": "azure"},
            },
            "needs openai_api_base",
        ),
        (
            {
                "provider": "openai",
                "openai_config": {"openai_api_key_plaintext": "k", "openai_api_type": "x"},
            },
            "use openai, azure or azuread",
        ),
        ({"provider": "custom", "custom_provider_config": {}}, "needs custom_provider_url"),
    ],
)
def test_configs_that_cannot_work_are_refused_with_the_fix(
    model: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidParameter, match=message):
        provider_for({"name": "m", **model}, no_secrets)
