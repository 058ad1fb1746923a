"""The real databricks-sdk and MLflow's Databricks deployments client, unchanged, against berth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    InvalidParameterValue,
    OperationFailed,
    ResourceConflict,
    ResourceDoesNotExist,
)
from databricks.sdk.service.serving import (
    AiGatewayUsageTrackingConfig,
    EmailNotifications,
    EndpointCoreConfigInput,
    EndpointStateConfigUpdate,
    EndpointStateReady,
    EndpointTag,
    ExternalModel,
    ExternalModelProvider,
    OpenAiConfig,
    RateLimit,
    RateLimitRenewalPeriod,
    ServedEntityInput,
    ServedModelStateDeployment,
    TrafficConfig,
)
from databricks.sdk.service.serving import Route as SdkRoute
from mlflow.deployments import get_deploy_client
from requests import HTTPError

from tests.support.deploy import ECHO, FAKES, register_model, unique
from tests.support.net import wait_until
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

WAIT = timedelta(seconds=60)


@pytest.fixture(scope="module")
def model(server: BerthServer) -> Iterator[str]:
    """Version 1 loads at once, version 2 takes minutes: an update to it stays in progress."""
    with server.client() as client:
        yield register_model(client, ECHO, FAKES / "slow_load")


@pytest.fixture
def databricks_env(server: BerthServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point both clients at berth, whatever the developer's own Databricks settings are."""
    for variable in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CONFIG_FILE", "DATABRICKS_CLIENT_ID"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("DATABRICKS_HOST", server.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", server.token)


@pytest.fixture
def workspace(server: BerthServer, databricks_env: None) -> WorkspaceClient:
    return WorkspaceClient(host=server.url, token=server.token)


@pytest.fixture
def name(api: httpx.Client) -> Iterator[str]:
    endpoint_name = unique("ep")
    yield endpoint_name
    api.delete(f"/api/2.0/serving-endpoints/{endpoint_name}")  # stops replicas left running


def test_sdk_drives_an_endpoint_through_its_life(
    workspace: WorkspaceClient, model: str, name: str
) -> None:
    endpoints = workspace.serving_endpoints
    entity = ServedEntityInput(
        entity_name=model, entity_version="1", workload_size="Small", scale_to_zero_enabled=True
    )
    waiter = endpoints.create(
        name,
        config=EndpointCoreConfigInput(name=name, served_entities=[entity]),
        tags=[EndpointTag(key="team", value="ml")],
    )
    created = waiter.response
    assert created.name == name
    assert created.state is not None
    assert created.state.ready == EndpointStateReady.NOT_READY
    assert created.state.config_update == EndpointStateConfigUpdate.IN_PROGRESS
    assert created.config is None
    assert created.pending_config is not None and created.pending_config.config_version == 1

    got = waiter.result(timeout=WAIT)
    assert got.state is not None and got.state.ready == EndpointStateReady.READY
    assert got.pending_config is None
    assert got.config is not None and got.config.served_entities is not None
    served = got.config.served_entities[0]
    assert (served.name, served.scale_to_zero_enabled) == (f"{model}-1", True)
    assert served.state is not None
    assert served.state.deployment == ServedModelStateDeployment.DEPLOYMENT_READY
    assert got.config.traffic_config is not None and got.config.traffic_config.routes
    assert got.config.traffic_config.routes[0].served_model_name == f"{model}-1"
    assert name in [listed.name for listed in endpoints.list()]

    second = ServedEntityInput(name="v2", entity_name=model, entity_version="2")
    routes = [SdkRoute(served_entity_name="v2", traffic_percentage=100)]
    update = endpoints.update_config(
        name, served_entities=[second], traffic_config=TrafficConfig(routes=routes)
    )
    updated = update.response
    assert updated.state is not None
    assert updated.state.config_update == EndpointStateConfigUpdate.IN_PROGRESS
    assert updated.pending_config is not None
    assert updated.pending_config.config_version == 2
    assert updated.config is not None and updated.config.config_version == 1
    with pytest.raises(ResourceConflict, match="config update in progress"):
        endpoints.update_config(name, served_entities=[entity])
    # Cancelling is berth's own route; the SDK's waiter reads the outcome as Databricks says it.
    workspace.api_client.do("POST", f"/api/2.0/serving-endpoints/{name}/config/cancel")
    with pytest.raises(OperationFailed, match="UPDATE_CANCELED"):
        update.result(timeout=WAIT)

    tags = endpoints.patch(
        name, add_tags=[EndpointTag(key="env", value="dev")], delete_tags=["team"]
    )
    assert [(tag.key, tag.value) for tag in tags.tags or []] == [("env", "dev")]

    endpoints.delete(name)
    with pytest.raises(ResourceDoesNotExist):
        endpoints.get(name)


def test_sdk_sets_rate_limits_ai_gateway_and_notifications(
    workspace: WorkspaceClient, name: str
) -> None:
    endpoints = workspace.serving_endpoints
    external = ExternalModel(
        name="gpt-4o",
        provider=ExternalModelProvider.OPENAI,
        task="llm/v1/chat",
        openai_config=OpenAiConfig(openai_api_key_plaintext="sk-not-echoed"),
    )
    config = EndpointCoreConfigInput(
        name=name, served_entities=[ServedEntityInput(external_model=external)]
    )
    created = endpoints.create_and_wait(name, config=config, timeout=WAIT)
    assert created.state is not None and created.state.ready == EndpointStateReady.READY

    limits = endpoints.put(
        name, rate_limits=[RateLimit(calls=10, renewal_period=RateLimitRenewalPeriod.MINUTE)]
    )
    assert limits.rate_limits is not None and limits.rate_limits[0].calls == 10
    usage = AiGatewayUsageTrackingConfig(enabled=True)
    gateway = endpoints.put_ai_gateway(name, usage_tracking_config=usage)
    assert gateway.usage_tracking_config == usage
    emails = EmailNotifications(on_update_failure=["ops@example.com"])
    notified = endpoints.update_notifications(name, email_notifications=emails)
    assert (notified.name, notified.email_notifications) == (name, emails)

    got = endpoints.get(name)
    assert got.ai_gateway is not None and got.ai_gateway.usage_tracking_config == usage
    assert got.email_notifications == emails
    assert got.task == "llm/v1/chat"
    assert got.config is not None and got.config.served_entities is not None
    served = got.config.served_entities[0]
    assert served.external_model is not None and served.external_model.openai_config is not None
    assert served.external_model.openai_config.openai_api_key_plaintext is None


def test_sdk_sees_databricks_errors(workspace: WorkspaceClient, name: str) -> None:
    bad = ServedEntityInput(entity_name="m", entity_version="1", workload_size="Huge")
    with pytest.raises(InvalidParameterValue, match="workload_size"):
        workspace.serving_endpoints.create(
            name, config=EndpointCoreConfigInput(name=name, served_entities=[bad])
        )
    with pytest.raises(ResourceDoesNotExist, match=name):
        workspace.serving_endpoints.get(name)


def settled(client: Any, name: str) -> dict[str, Any]:
    """The endpoint as MLflow's client reads it once no update is in progress."""
    wait_until(
        lambda: client.get_endpoint(endpoint=name)["state"]["config_update"] != "IN_PROGRESS",
        timeout=60,
        what=f"endpoint {name} to finish its config update",
    )
    endpoint: dict[str, Any] = client.get_endpoint(endpoint=name)
    return endpoint


def test_mlflow_deployments_client_creates_lists_and_deletes(
    databricks_env: None, model: str, name: str
) -> None:
    client = get_deploy_client("databricks")
    served = {"entity_name": model, "entity_version": "1", "scale_to_zero_enabled": True}
    payload: dict[str, Any] = {
        "name": name,
        "config": {"served_entities": [served]},
        "tags": [{"key": "team", "value": "ml"}],
    }

    created = client.create_endpoint(config=payload)

    assert created["name"] == name
    assert created["state"] == {"ready": "NOT_READY", "config_update": "IN_PROGRESS"}
    assert created["pending_config"]["served_entities"][0]["entity_name"] == model
    got = settled(client, name)
    assert got["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    assert got["config"]["served_entities"][0]["entity_name"] == model
    assert got["tags"] == [{"key": "team", "value": "ml"}]
    assert name in [endpoint["name"] for endpoint in client.list_endpoints()]
    assert client.delete_endpoint(endpoint=name) == {}
    with pytest.raises(HTTPError, match="RESOURCE_DOES_NOT_EXIST"):
        client.get_endpoint(endpoint=name)


def test_mlflow_creates_an_external_model_endpoint(
    databricks_env: None, name: str, api: httpx.Client
) -> None:
    client = get_deploy_client("databricks")
    scope = f"{name}-keys"
    assert api.post("/api/2.0/secrets/scopes/create", json={"scope": scope}).status_code == 200
    put = {"scope": scope, "key": "openai", "string_value": "sk-not-used-here"}
    assert api.post("/api/2.0/secrets/put", json=put).status_code == 200
    external_model = {
        "name": "gpt-4",
        "provider": "openai",
        "task": "llm/v1/chat",
        "openai_config": {"openai_api_key": f"{{{{secrets/{scope}/openai}}}}"},
    }
    config = {"served_entities": [{"external_model": external_model}]}

    created = client.create_endpoint(config={"name": name, "config": config})

    assert created["task"] == "llm/v1/chat"
    assert created["state"] == {"ready": "NOT_READY", "config_update": "IN_PROGRESS"}
    got = settled(client, name)
    assert got["state"] == {"ready": "READY", "config_update": "NOT_UPDATING"}
    entity = got["config"]["served_entities"][0]
    assert entity["name"] == "gpt-4"
    assert entity["external_model"] == external_model
