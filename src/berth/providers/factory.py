"""A provider from a Databricks ``external_model`` block, with its secrets resolved.

Each secret field comes as a ``{{secrets/scope/key}}`` reference, resolved through the
``secrets`` callable (which receives the reference text as written), or as a ``*_plaintext``
twin. Every config also takes ``<provider>_api_base`` (a berth extension) to point it at
another server, such as a local fake in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from berth.core.errors import InvalidParameter
from berth.providers.anthropic import DEFAULT_API_BASE, AnthropicProvider, anthropic_headers
from berth.providers.base import Provider, ProviderOptions
from berth.providers.client import ProviderClient
from berth.providers.openai import OpenAiCompatible, azure_url, base_url, custom_url

Secrets = Callable[[str], str]
OPENAI_API_BASE = "https://api.openai.com/v1"


def provider_for(
    external_model: Mapping[str, Any], secrets: Secrets, options: ProviderOptions | None = None
) -> Provider:
    """The provider that serves ``external_model``; raises ``InvalidParameter`` if it cannot."""
    kind = external_model.get("provider")
    model = str(external_model.get("name") or "")
    options = options or ProviderOptions()
    if kind == "openai":
        return _openai(model, _block(external_model, "openai_config"), secrets, options)
    if kind == "anthropic":
        return _anthropic(model, _block(external_model, "anthropic_config"), secrets, options)
    if kind == "custom":
        return _custom(model, _block(external_model, "custom_provider_config"), secrets, options)
    raise InvalidParameter(
        f"External model provider {kind!r} is not supported by berth yet: use openai, "
        "anthropic or custom (any OpenAI-compatible server)."
    )


def _block(external_model: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    block = external_model.get(key)
    if not isinstance(block, Mapping):
        raise InvalidParameter(f"The external model needs its {key} block.")
    return block


def secret(block: Mapping[str, Any], field: str, secrets: Secrets) -> str:
    """The value of secret ``field``: its ``_plaintext`` twin, else its reference resolved."""
    plaintext = block.get(f"{field}_plaintext")
    if plaintext:
        return str(plaintext)
    reference = block.get(field)
    if not reference:
        raise InvalidParameter(f"The provider config needs {field} or {field}_plaintext.")
    return secrets(str(reference))


def _openai(
    model: str, block: Mapping[str, Any], secrets: Secrets, options: ProviderOptions
) -> Provider:
    key = secret(block, "openai_api_key", secrets)
    api_type = str(block.get("openai_api_type") or "openai").lower()
    if api_type in ("azure", "azuread"):
        return _azure(model, block, key, api_type, options)
    if api_type != "openai":
        raise InvalidParameter(
            f"openai_api_type {api_type!r} is unknown: use openai, azure or azuread."
        )
    headers = {"authorization": f"Bearer {key}"}
    if block.get("openai_organization"):
        headers["openai-organization"] = str(block["openai_organization"])
    url_for = base_url(str(block.get("openai_api_base") or OPENAI_API_BASE))
    return OpenAiCompatible("openai", model, url_for, _client("openai", headers, key, options))


def _azure(
    model: str, block: Mapping[str, Any], key: str, api_type: str, options: ProviderOptions
) -> Provider:
    """Azure OpenAI: ``api-key`` for key auth; an Entra ID token (azuread) goes as a bearer."""
    headers = {"api-key": key} if api_type == "azure" else {"authorization": f"Bearer {key}"}
    url_for = azure_url(
        _required(block, "openai_api_base"),
        _required(block, "openai_deployment_name"),
        _required(block, "openai_api_version"),
    )
    return OpenAiCompatible(
        "openai", model, url_for, _client("azure openai", headers, key, options)
    )


def _anthropic(
    model: str, block: Mapping[str, Any], secrets: Secrets, options: ProviderOptions
) -> Provider:
    key = secret(block, "anthropic_api_key", secrets)
    base = str(block.get("anthropic_api_base") or DEFAULT_API_BASE)
    return AnthropicProvider(
        model, base, _client("anthropic", anthropic_headers(key), key, options)
    )


def _custom(
    model: str, block: Mapping[str, Any], secrets: Secrets, options: ProviderOptions
) -> Provider:
    url = _required(block, "custom_provider_url")
    bearer, api_key = block.get("bearer_token_auth"), block.get("api_key_auth")
    if isinstance(bearer, Mapping):
        token = secret(bearer, "token", secrets)
        headers, key = {"authorization": f"Bearer {token}"}, token
    elif isinstance(api_key, Mapping):
        key = secret(api_key, "value", secrets)
        headers = {_required(api_key, "key"): key}
    else:
        headers, key = {}, ""
    return OpenAiCompatible(
        "custom", model, custom_url(url), _client("custom", headers, key, options)
    )


def _required(block: Mapping[str, Any], field: str) -> str:
    value = block.get(field)
    if not value:
        raise InvalidParameter(f"The provider config needs {field}.")
    return str(value)


def _client(
    name: str, headers: dict[str, str], key: str, options: ProviderOptions
) -> ProviderClient:
    return ProviderClient(name, headers, [key], options)
