"""Provider blocks and their secrets: exactly one form of each secret, the block of the provider."""

from __future__ import annotations

from typing import Any

import pytest

from berth.api.external_model_rules import check_provider_config, default_name
from berth.api.schemas.external_models import ExternalModel
from berth.core.errors import InvalidParameter


def model(provider: str, **blocks: Any) -> ExternalModel:
    return ExternalModel.model_validate(
        {"name": "m", "provider": provider, "task": "llm/v1/chat", **blocks}
    )


VALID = [
    model("openai", openai_config={"openai_api_key_plaintext": "sk"}),
    model(
        "openai",
        openai_config={
            "openai_api_type": "azuread",
            "microsoft_entra_client_secret": "{{secrets/a/b}}",
            "microsoft_entra_client_id": "id",
            "microsoft_entra_tenant_id": "tenant",
        },
    ),
    model(
        "amazon-bedrock",
        amazon_bedrock_config={
            "aws_region": "us-east-1",
            "bedrock_provider": "anthropic",
            "aws_access_key_id": "{{secrets/a/id}}",
            "aws_secret_access_key_plaintext": "secret",
        },
    ),
    model(
        "amazon-bedrock",
        amazon_bedrock_config={
            "aws_region": "us-east-1",
            "bedrock_provider": "amazon",
            "instance_profile_arn": "arn:aws:iam::1:instance-profile/x",
        },
    ),
    model(
        "google-cloud-vertex-ai",
        google_cloud_vertex_ai_config={"project_id": "p", "region": "r", "private_key": "{{s/k}}"},
    ),
    model(
        "databricks-model-serving",
        databricks_model_serving_config={
            "databricks_workspace_url": "https://x",
            "databricks_api_token_plaintext": "dapi",
        },
    ),
    model(
        "custom",
        custom_provider_config={
            "custom_provider_url": "https://llm.internal",
            "api_key_auth": {"key": "X-Key", "value": "{{secrets/a/b}}"},
        },
    ),
    model(
        "custom",
        custom_provider_config={
            "custom_provider_url": "https://llm.internal",
            "bearer_token_auth": {"token_plaintext": "t"},
        },
    ),
    model("cohere", cohere_config={"cohere_api_key": "{{secrets/a/b}}"}),
    model("ai21labs", ai21labs_config={"ai21labs_api_key_plaintext": "k"}),
    model("palm", palm_config={"palm_api_key": "{{secrets/a/b}}"}),
]


@pytest.mark.parametrize("external", VALID, ids=lambda m: m.provider)
def test_valid_provider_configs_pass(external: ExternalModel) -> None:
    check_provider_config("entity", external)


INVALID = [
    (model("anthropic"), "needs anthropic_config"),
    (
        model("openai", openai_config={"openai_api_type": "azuread", "openai_api_key": "k"}),
        "exactly one of microsoft_entra_client_secret",
    ),
    (
        model(
            "amazon-bedrock",
            amazon_bedrock_config={
                "aws_region": "us-east-1",
                "bedrock_provider": "cohere",
                "aws_access_key_id": "{{secrets/a/id}}",
            },
        ),
        "exactly one of aws_secret_access_key",
    ),
    (
        model(
            "amazon-bedrock",
            amazon_bedrock_config={
                "aws_region": "us-east-1",
                "bedrock_provider": "cohere",
                "uc_service_credential_name": "cred",
                "aws_access_key_id": "{{secrets/a/id}}",
                "aws_access_key_id_plaintext": "AKIA",
            },
        ),
        "exactly one of aws_access_key_id",
    ),
    (
        model("custom", custom_provider_config={"custom_provider_url": "https://x"}),
        "exactly one of api_key_auth or bearer_token_auth",
    ),
    (
        model(
            "custom",
            custom_provider_config={
                "custom_provider_url": "https://x",
                "api_key_auth": {"key": "X-Key"},
            },
        ),
        "api_key_auth needs exactly one of value",
    ),
    (
        model(
            "cohere",
            cohere_config={"cohere_api_key": "k"},
            palm_config={"palm_api_key": "k"},
        ),
        "palm_config, which does not match provider 'cohere'",
    ),
]


@pytest.mark.parametrize(("external", "message"), INVALID)
def test_invalid_provider_configs_say_what_to_fix(external: ExternalModel, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        check_provider_config("entity", external)


def test_default_name_replaces_dots_and_colons() -> None:
    assert default_name(model("openai").model_copy(update={"name": "a.b:c"})) == "a-b-c"
