"""Wire types of external models: an LLM provider served through an endpoint.

Each provider's secret comes as a secret reference (``{{secrets/scope/key}}``) or as a
``*_plaintext`` twin; the semantic rules (exactly one of the two, the block matching the
provider) live in ``berth.api.external_model_rules``.
"""

from __future__ import annotations

from typing import Literal

from berth.api.schemas.strict import Strict

Provider = Literal[
    "openai",
    "anthropic",
    "cohere",
    "ai21labs",
    "amazon-bedrock",
    "google-cloud-vertex-ai",
    "palm",
    "databricks-model-serving",
    "custom",
]
Task = Literal["llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings"]


class OpenAiConfig(Strict):
    openai_api_key: str | None = None
    openai_api_key_plaintext: str | None = None
    openai_api_base: str | None = None
    openai_api_type: str | None = None
    openai_api_version: str | None = None
    openai_deployment_name: str | None = None
    openai_organization: str | None = None
    microsoft_entra_client_id: str | None = None
    microsoft_entra_client_secret: str | None = None
    microsoft_entra_client_secret_plaintext: str | None = None
    microsoft_entra_tenant_id: str | None = None


class AnthropicConfig(Strict):
    anthropic_api_key: str | None = None
    anthropic_api_key_plaintext: str | None = None
    anthropic_api_base: str | None = None  # berth extension: a proxy or a test server


class CohereConfig(Strict):
    cohere_api_key: str | None = None
    cohere_api_key_plaintext: str | None = None
    cohere_api_base: str | None = None


class Ai21LabsConfig(Strict):
    ai21labs_api_key: str | None = None
    ai21labs_api_key_plaintext: str | None = None
    ai21labs_api_base: str | None = None  # berth extension


class AmazonBedrockConfig(Strict):
    aws_region: str
    bedrock_provider: Literal["anthropic", "cohere", "ai21labs", "amazon"]
    aws_access_key_id: str | None = None
    aws_access_key_id_plaintext: str | None = None
    aws_secret_access_key: str | None = None
    aws_secret_access_key_plaintext: str | None = None
    instance_profile_arn: str | None = None
    uc_service_credential_name: str | None = None


class GoogleCloudVertexAiConfig(Strict):
    project_id: str
    region: str
    private_key: str | None = None
    private_key_plaintext: str | None = None


class PaLmConfig(Strict):
    palm_api_key: str | None = None
    palm_api_key_plaintext: str | None = None


class DatabricksModelServingConfig(Strict):
    databricks_workspace_url: str
    databricks_api_token: str | None = None
    databricks_api_token_plaintext: str | None = None


class ApiKeyAuth(Strict):
    key: str
    value: str | None = None
    value_plaintext: str | None = None


class BearerTokenAuth(Strict):
    token: str | None = None
    token_plaintext: str | None = None


class CustomProviderConfig(Strict):
    custom_provider_url: str
    api_key_auth: ApiKeyAuth | None = None
    bearer_token_auth: BearerTokenAuth | None = None


class ExternalModel(Strict):
    """``name`` is the provider's model id, e.g. ``gpt-4o``."""

    name: str
    provider: Provider
    task: Task
    openai_config: OpenAiConfig | None = None
    anthropic_config: AnthropicConfig | None = None
    cohere_config: CohereConfig | None = None
    ai21labs_config: Ai21LabsConfig | None = None
    amazon_bedrock_config: AmazonBedrockConfig | None = None
    google_cloud_vertex_ai_config: GoogleCloudVertexAiConfig | None = None
    palm_config: PaLmConfig | None = None
    databricks_model_serving_config: DatabricksModelServingConfig | None = None
    custom_provider_config: CustomProviderConfig | None = None
