"""The rules of external-model served entities, as pure checks raising ``InvalidParameter``.

An external model needs no replicas: it names a provider, the one config block of that
provider, and each provider secret exactly once (a ``{{secrets/scope/key}}`` reference, stored
as given, or its ``*_plaintext`` twin).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from berth.api.schemas.endpoints import ServedEntityInput
from berth.api.schemas.external_models import ExternalModel
from berth.core.endpoint_config import ServedEntity
from berth.core.errors import InvalidParameter
from berth.providers.egress import Egress

PLAINTEXT_SUFFIX = "_plaintext"

CONFIG_BLOCKS: dict[str, str] = {
    "openai": "openai_config",
    "anthropic": "anthropic_config",
    "cohere": "cohere_config",
    "ai21labs": "ai21labs_config",
    "amazon-bedrock": "amazon_bedrock_config",
    "google-cloud-vertex-ai": "google_cloud_vertex_ai_config",
    "palm": "palm_config",
    "databricks-model-serving": "databricks_model_serving_config",
    "custom": "custom_provider_config",
}

_SECRETS: dict[str, tuple[str, ...]] = {
    "anthropic": ("anthropic_api_key",),
    "cohere": ("cohere_api_key",),
    "ai21labs": ("ai21labs_api_key",),
    "google-cloud-vertex-ai": ("private_key",),
    "palm": ("palm_api_key",),
    "databricks-model-serving": ("databricks_api_token",),
}

_COMPUTE_FIELDS = (
    "entity_name",
    "entity_version",
    "workload_size",
    "workload_type",
    "scale_to_zero_enabled",
    "min_provisioned_concurrency",
    "max_provisioned_concurrency",
    "min_provisioned_throughput",
    "max_provisioned_throughput",
    "provisioned_model_units",
    "max_batch_size",
    "max_batch_wait_ms",
    "scale_to_zero_idle_seconds",
)

Block = Mapping[str, Any]


def default_name(model: ExternalModel) -> str:
    """Databricks' default served name: the provider's model id with '.' and ':' as '-'."""
    return model.name.replace(".", "-").replace(":", "-")


def check_external_entity(label: str, entity: ServedEntityInput, model: ExternalModel) -> None:
    """``entity`` serves ``model``: it has no registry or compute fields, and valid credentials."""
    given = [name for name in _COMPUTE_FIELDS if getattr(entity, name) is not None]
    if given:
        raise InvalidParameter(
            f"{label}: external_model cannot be combined with {', '.join(given)}; "
            "an external model runs at its provider, remove those fields."
        )
    if model.provider not in SERVED_PROVIDERS:
        raise InvalidParameter(
            f"{label}: external_model provider '{model.provider}' is not supported by berth: "
            f"use {', '.join(SERVED_PROVIDERS)} (any OpenAI-compatible server, such as a proxy "
            "in front of that provider, works as 'custom')."
        )
    check_provider_config(label, model)


SERVED_PROVIDERS = ("openai", "anthropic", "custom")
"""The providers berth can call; the others of Databricks' list are refused when stored."""


def check_provider_config(label: str, model: ExternalModel) -> None:
    expected = CONFIG_BLOCKS[model.provider]
    dumped = model.model_dump(exclude_none=True)
    foreign = sorted(key for key in CONFIG_BLOCKS.values() if key in dumped and key != expected)
    if foreign:
        raise InvalidParameter(
            f"{label}: external_model has {', '.join(foreign)}, which does not match provider "
            f"'{model.provider}'; give {expected} instead."
        )
    block = dumped.get(expected)
    if block is None:
        raise InvalidParameter(
            f"{label}: external_model with provider '{model.provider}' needs {expected}."
        )
    where = f"{label}: external_model.{expected}"
    if model.provider == "openai":
        _check_openai(where, block)
    elif model.provider == "amazon-bedrock":
        _check_bedrock(where, block)
    elif model.provider == "custom":
        _check_custom(where, block)
    else:
        for secret in _SECRETS[model.provider]:
            _exactly_one(where, block, secret)


def _check_openai(where: str, block: Block) -> None:
    if block.get("openai_api_type") == "azuread":
        _exactly_one(where, block, "microsoft_entra_client_secret")
    else:
        _exactly_one(where, block, "openai_api_key")


def _check_bedrock(where: str, block: Block) -> None:
    if "instance_profile_arn" in block or "uc_service_credential_name" in block:
        for secret in ("aws_access_key_id", "aws_secret_access_key"):
            if secret in block and secret + PLAINTEXT_SUFFIX in block:
                raise InvalidParameter(_one_of_message(where, secret))
        return
    _exactly_one(where, block, "aws_access_key_id")
    _exactly_one(where, block, "aws_secret_access_key")


def _check_custom(where: str, block: Block) -> None:
    auths = [key for key in ("api_key_auth", "bearer_token_auth") if key in block]
    if len(auths) != 1:
        raise InvalidParameter(f"{where} needs exactly one of api_key_auth or bearer_token_auth.")
    auth = auths[0]
    _exactly_one(f"{where}.{auth}", block[auth], "value" if auth == "api_key_auth" else "token")


def _exactly_one(where: str, block: Block, secret: str) -> None:
    if (secret in block) == (secret + PLAINTEXT_SUFFIX in block):
        raise InvalidParameter(_one_of_message(where, secret))


def _one_of_message(where: str, secret: str) -> str:
    return (
        f"{where} needs exactly one of {secret} (a secret reference such as "
        f"'{{{{secrets/scope/key}}}}') or {secret}{PLAINTEXT_SUFFIX}."
    )


URL_FIELDS = ("custom_provider_url", "databricks_workspace_url")
"""Fields besides every ``*_api_base`` that name where berth will call."""


def check_egress(served_entities: Iterable[ServedEntity], egress: Egress) -> None:
    """Every provider URL in the config may be called from this server."""
    for entity in served_entities:
        if entity.external_model is None:
            continue
        for block_name, block in entity.external_model.blocks.items():
            for key, value in block.items():
                if isinstance(value, str) and (key.endswith("_api_base") or key in URL_FIELDS):
                    where = f"served entity '{entity.name}': {block_name}.{key}"
                    egress.check_url(value, where)
