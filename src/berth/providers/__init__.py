"""External LLM providers (OpenAI, Azure OpenAI, Anthropic, any OpenAI-compatible server)
behind berth's one schema, the OpenAI API; they never know about endpoints or tokens."""

from berth.providers.base import JsonObject, Provider, ProviderOptions, Stream
from berth.providers.errors import ProviderCredentialsRejected
from berth.providers.factory import provider_for

__all__ = [
    "JsonObject",
    "Provider",
    "ProviderCredentialsRejected",
    "ProviderOptions",
    "Stream",
    "provider_for",
]
