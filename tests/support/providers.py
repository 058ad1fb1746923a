"""Building providers against the fake server, with waits recorded instead of slept."""

from __future__ import annotations

import random
from typing import Any

from berth.providers import Provider, ProviderOptions, provider_for
from berth.providers.egress import Egress
from tests.fakes.llm_server import FakeLlmServer

LOOPBACK_ALLOWED = Egress(frozenset({"127.0.0.1"}))
"""The fake providers listen on the loopback: allowed, as an operator would allow a proxy."""


class RecordedSleeps(list[float]):
    """Stands in for ``asyncio.sleep``: backoff is asserted on, not waited for."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def options(sleeps: RecordedSleeps | None = None, **overrides: Any) -> ProviderOptions:
    given: dict[str, Any] = {"egress": LOOPBACK_ALLOWED, **overrides}
    return ProviderOptions(
        sleep=sleeps if sleeps is not None else RecordedSleeps(), rng=random.Random(0), **given
    )


def no_secrets(reference: str) -> str:
    raise AssertionError(f"no secret reference expected, got {reference}")


def openai_provider(server: FakeLlmServer, key: str | None = None, **kw: Any) -> Provider:
    config = {
        "openai_api_key_plaintext": key or server.api_key,
        "openai_api_base": server.url + "/v1",
    }
    model = {"name": "gpt-fake", "provider": "openai", "openai_config": config}
    return provider_for(model, no_secrets, options(**kw))


def anthropic_provider(server: FakeLlmServer, key: str | None = None, **kw: Any) -> Provider:
    config = {
        "anthropic_api_key_plaintext": key or server.api_key,
        "anthropic_api_base": server.url,
    }
    model = {"name": "claude-fake", "provider": "anthropic", "anthropic_config": config}
    return provider_for(model, no_secrets, options(**kw))


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **extra}
