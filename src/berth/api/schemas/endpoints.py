"""Wire types of the serving-endpoints requests, field for field as databricks-sdk sends them.

Everything optional is ``X | None`` so that explicit ``null`` (MLflow sends
``"route_optimized": null``) reads as absent. Rules that span fields live in
``berth.api.endpoint_config``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeInt, field_validator, model_validator

from berth.api.schemas.external_models import ExternalModel
from berth.api.schemas.strict import Strict

WorkloadSize = Literal["Small", "Medium", "Large"]
WorkloadType = Literal[
    "CPU",
    "CPU_MEDIUM",
    "CPU_LARGE",
    "GPU_SMALL",
    "GPU_MEDIUM",
    "GPU_LARGE",
    "GPU_XLARGE",
    "GPU_XLARGE_8",
    "MULTIGPU_MEDIUM",
]
RenewalPeriod = Literal["minute"]


def _version_text(value: object) -> object:
    """Seed 002's REST bodies send a number (``"entity_version": 2``): taken as its text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


class ServedEntityInput(Strict):
    """A registered model version (``entity_name``, ``entity_version``) or an external model."""

    name: str | None = None
    entity_name: str | None = None
    entity_version: str | None = None

    @field_validator("entity_version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        return _version_text(value)

    external_model: ExternalModel | None = None
    workload_size: WorkloadSize | None = None
    workload_type: WorkloadType | None = None
    scale_to_zero_enabled: bool | None = None
    min_provisioned_concurrency: NonNegativeInt | None = None
    max_provisioned_concurrency: NonNegativeInt | None = None
    min_provisioned_throughput: NonNegativeInt | None = None
    max_provisioned_throughput: NonNegativeInt | None = None
    provisioned_model_units: NonNegativeInt | None = None
    burst_scaling_enabled: bool | None = None
    environment_vars: dict[str, str] | None = None
    instance_profile_arn: str | None = None
    max_batch_size: int | None = Field(None, ge=1, le=1024)
    """berth's extension: requests merged into one ``predict`` call (1 = no batching)."""
    max_batch_wait_ms: float | None = Field(None, ge=0, le=1000)
    """berth's extension: how long a batch waits to fill after its first request."""
    scale_to_zero_idle_seconds: int | None = Field(None, ge=1, le=365 * 86_400)
    """berth's extension: idle time before a scale-to-zero entity stops its last replica."""


class ServedModelInput(Strict):
    """The deprecated twin of ``ServedEntityInput``; read as a served entity.

    The SDK types ``scale_to_zero_enabled`` as required; here it defaults to false like
    everywhere else.
    """

    model_name: str
    model_version: str
    scale_to_zero_enabled: bool | None = None
    name: str | None = None
    workload_size: WorkloadSize | None = None
    workload_type: WorkloadType | None = None
    min_provisioned_concurrency: NonNegativeInt | None = None
    max_provisioned_concurrency: NonNegativeInt | None = None
    min_provisioned_throughput: NonNegativeInt | None = None
    max_provisioned_throughput: NonNegativeInt | None = None
    provisioned_model_units: NonNegativeInt | None = None
    burst_scaling_enabled: bool | None = None
    environment_vars: dict[str, str] | None = None
    instance_profile_arn: str | None = None


class Route(Strict):
    """One share of traffic; either name may be used, GET echoes both."""

    served_entity_name: str | None = None
    served_model_name: str | None = None
    traffic_percentage: int = Field(ge=0, le=100)


class TrafficConfig(Strict):
    routes: list[Route] | None = None


class AutoCaptureConfigInput(Strict):
    """Legacy inference tables: captured as the AI gateway's are (catalog, schema and prefix
    are kept for Databricks clients; berth writes Parquet under $BERTH_HOME/inference)."""

    catalog_name: str | None = None
    schema_name: str | None = None
    table_name_prefix: str | None = None
    enabled: bool | None = None
    sampling_fraction: float | None = Field(None, gt=0, le=1)
    """berth's extension: the share of requests captured (default 1)."""


class EndpointCoreConfigInput(Strict):
    """A config; ``name`` is what the SDK repeats inside it on create, and is ignored."""

    name: str | None = None
    served_entities: list[ServedEntityInput] | None = None
    served_models: list[ServedModelInput] | None = None
    traffic_config: TrafficConfig | None = None
    auto_capture_config: AutoCaptureConfigInput | None = None


class RateLimit(Strict):
    """A legacy endpoint rate limit (``PUT .../rate-limits``)."""

    calls: NonNegativeInt
    renewal_period: RenewalPeriod
    key: Literal["user", "endpoint"] | None = None


class AiGatewayRateLimit(Strict):
    renewal_period: RenewalPeriod
    calls: NonNegativeInt | None = None
    tokens: NonNegativeInt | None = None
    key: Literal["user", "user_group", "service_principal", "endpoint"] | None = None
    principal: str | None = None


class PiiBehavior(Strict):
    behavior: Literal["NONE", "BLOCK", "MASK"] | None = None


class GuardrailParameters(Strict):
    """berth enforces ``invalid_keywords`` and ``pii``; ``safety`` and ``valid_topics`` need a
    classifier model it does not have, so asking for them is refused, not ignored."""

    safety: bool | None = None
    pii: PiiBehavior | None = None
    invalid_keywords: list[str] | None = None
    valid_topics: list[str] | None = None

    @model_validator(mode="after")
    def _enforced_only(self) -> GuardrailParameters:
        asked = [name for name in ("safety", "valid_topics") if getattr(self, name)]
        if asked:
            raise ValueError(
                f"berth does not enforce the {' and '.join(asked)} guardrail; it enforces "
                "invalid_keywords and pii (BLOCK or MASK): remove it"
            )
        return self


class Guardrails(Strict):
    input: GuardrailParameters | None = None
    output: GuardrailParameters | None = None


class InferenceTableConfig(Strict):
    enabled: bool | None = None
    catalog_name: str | None = None
    schema_name: str | None = None
    table_name_prefix: str | None = None
    sampling_fraction: float | None = Field(None, gt=0, le=1)
    """berth's extension: the share of requests captured (default 1)."""


class Enabled(Strict):
    enabled: bool | None = None


class LogConfig(Strict):
    """berth's extension: ``PUT .../logging``."""

    access_log: bool = False
    predict_log: bool = False


class AiGatewayConfig(Strict):
    """The body and the answer of ``PUT .../ai-gateway``; an empty one clears the gateway."""

    rate_limits: list[AiGatewayRateLimit] | None = None
    guardrails: Guardrails | None = None
    inference_table_config: InferenceTableConfig | None = None
    usage_tracking_config: Enabled | None = None
    fallback_config: Enabled | None = None


class EndpointTag(Strict):
    key: str = Field(min_length=1)
    value: str | None = None


class EmailNotifications(Strict):
    on_update_failure: list[str] | None = None
    on_update_success: list[str] | None = None


class TelemetryInferenceTableConfig(Strict):
    name: str | None = None
    sampling_fraction: float | None = None


class UnityCatalogTableNames(Strict):
    logs_table: str | None = None
    metrics_table: str | None = None
    traces_table: str | None = None
    annotations_table: str | None = None


class TelemetryConfig(Strict):
    enabled_telemetry_features: (
        list[
            Literal[
                "TELEMETRY_FEATURE_INFERENCE_TABLE",
                "TELEMETRY_FEATURE_LOGS",
                "TELEMETRY_FEATURE_METRICS",
                "TELEMETRY_FEATURE_TRACES",
            ]
        ]
        | None
    ) = None
    inference_table_config: TelemetryInferenceTableConfig | None = None
    table_names: UnityCatalogTableNames | None = None
    telemetry_profile_id: str | None = None


class CreateServingEndpoint(Strict):
    name: str
    config: EndpointCoreConfigInput
    ai_gateway: AiGatewayConfig | None = None
    rate_limits: list[RateLimit] | None = None
    tags: list[EndpointTag] | None = None
    route_optimized: bool | None = None
    description: str | None = None
    budget_policy_id: str | None = None
    email_notifications: EmailNotifications | None = None
    telemetry_config: TelemetryConfig | None = None


class PtServedEntityInput(Strict):
    """A served entity of a provisioned-throughput endpoint: a fixed number of model units
    (one unit = one throughput chunk of the version on this host = one replica)."""

    entity_name: str
    entity_version: str | None = None
    provisioned_model_units: int = Field(ge=1)
    burst_scaling_enabled: bool | None = None
    """Default true: the entity may grow to twice its units under load."""
    name: str | None = None

    @field_validator("entity_version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        return _version_text(value)


class PtEndpointCoreConfig(Strict):
    served_entities: list[PtServedEntityInput] | None = None
    traffic_config: TrafficConfig | None = None


class CreatePtEndpoint(Strict):
    """``POST /api/2.0/serving-endpoints/pt``."""

    name: str
    config: PtEndpointCoreConfig
    ai_gateway: AiGatewayConfig | None = None
    budget_policy_id: str | None = None
    email_notifications: EmailNotifications | None = None
    tags: list[EndpointTag] | None = None


class UpdatePtConfig(Strict):
    """``PUT /api/2.0/serving-endpoints/pt/{name}/config``."""

    config: PtEndpointCoreConfig


class PatchTags(Strict):
    add_tags: list[EndpointTag] | None = None
    delete_tags: list[str] | None = None


class PutRateLimits(Strict):
    rate_limits: list[RateLimit] | None = None


class PatchNotifications(Strict):
    email_notifications: EmailNotifications | None = None
