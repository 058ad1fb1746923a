"""The container spec on the wire: Vertex's snake_case and camelCase alike, normalised the same,
and each refusal naming the field at fault as the API's 400 says it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from berth.api.errors import describe_validation_errors
from berth.api.schemas.models import CreateVersionRequest
from berth.core.errors import InvalidParameter
from berth.registry.formats import ContainerVersion
from berth.registry.sources import NoArtifact, SourceUri
from berth.runtime.probes import PROBE_DEFAULTS  # what the replica assumes

SNAKE = {
    "image_uri": "localhost/triton:24.01",
    "command": ["tritonserver"],
    "args": ["--http-port=$(AIP_HTTP_PORT)"],
    "env": [{"name": "MODEL_REPO", "value": "$(AIP_STORAGE_URI)"}],
    "ports": [{"container_port": 8000}],
    "predict_route": "/v2/models/m/infer",
    "health_route": "/v2/health/ready",
    "invoke_route_prefix": "/*",
    "shared_memory_size_mb": 2048,
    "deployment_timeout": "1800s",
    "startup_probe": {"http_get": {"path": "/v2/health/ready", "port": 8000}},
    "health_probe": {"tcp_socket": {}, "period_seconds": 5},
    "liveness_probe": {"exec": {"command": ["true"]}, "failure_threshold": 6},
}
CAMEL = {
    "imageUri": "localhost/triton:24.01",
    "command": ["tritonserver"],
    "args": ["--http-port=$(AIP_HTTP_PORT)"],
    "env": [{"name": "MODEL_REPO", "value": "$(AIP_STORAGE_URI)"}],
    "ports": [{"containerPort": 8000}],
    "predictRoute": "/v2/models/m/infer",
    "healthRoute": "/v2/health/ready",
    "invokeRoutePrefix": "/*",
    "sharedMemorySizeMb": "2048",  # an int64: Vertex's JSON writes it as a string
    "deploymentTimeout": "1800s",
    "startupProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8000}},
    "healthProbe": {"tcpSocket": {}, "periodSeconds": 5},
    "livenessProbe": {"exec": {"command": ["true"]}, "failureThreshold": 6},
}


def _container(body: dict[str, Any]) -> ContainerVersion | None:
    return CreateVersionRequest.model_validate(body).container()


def _refusal(spec: dict[str, Any]) -> str:
    """The message of the 400 the API answers for this spec."""
    with pytest.raises(ValidationError) as caught:
        CreateVersionRequest.model_validate({"container_spec": spec})
    code, message, status = describe_validation_errors(caught.value.errors())
    assert (code, status) == ("INVALID_PARAMETER_VALUE", 400)
    return message


def test_camel_and_snake_case_give_the_same_normalised_spec() -> None:
    snake = _container({"container_spec": SNAKE})
    assert snake is not None
    assert snake == _container({"container_spec": CAMEL})
    assert snake.spec == {
        **SNAKE,
        "deployment_timeout": 1800.0,
        "startup_probe": {**PROBE_DEFAULTS, **SNAKE["startup_probe"]},
        "health_probe": {**PROBE_DEFAULTS, "tcp_socket": {}, "period_seconds": 5},
        "liveness_probe": {**PROBE_DEFAULTS, **SNAKE["liveness_probe"]},
    }


def test_what_a_spec_leaves_out_stays_out_but_lists() -> None:
    """Routes' defaults depend on the deployment (core/container_contract), so none is stored."""
    container = _container({"container_spec": {"command": ["python", "server.py"]}})
    assert container == ContainerVersion(
        {"command": ["python", "server.py"], "args": [], "env": [], "ports": []}
    )


def test_a_stored_spec_is_accepted_back_as_it_is() -> None:
    stored = _container({"container_spec": SNAKE})
    assert stored is not None
    assert _container({"container_spec": dict(stored.spec)}) == stored


@pytest.mark.parametrize(
    ("timeout", "seconds"), [("90.5s", 90.5), ("7200s", 7200.0), ("0.000000001s", 1e-9), (60, 60.0)]
)
def test_deployment_timeouts_are_durations_in_seconds(timeout: object, seconds: float) -> None:
    container = _container({"container_spec": {"command": ["x"], "deployment_timeout": timeout}})
    assert container is not None
    assert container.spec["deployment_timeout"] == seconds


def test_task_and_source_go_with_the_spec() -> None:
    body = CreateVersionRequest.model_validate(
        {"source": "/models/m", "container_spec": {"command": ["x"]}, "task": "llm/v1/chat"}
    )
    assert body.artifact() == SourceUri("/models/m")
    container = body.container()
    assert container is not None
    assert container.task == "llm/v1/chat"
    without_source = CreateVersionRequest.model_validate({"container_spec": {"command": ["x"]}})
    assert without_source.artifact() == NoArtifact()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"args": ["--port=8080"]},
            "container_spec.command: give the command that starts the server",
        ),
        (  # podman would read it as its own option: --privileged, a host volume...
            {"image_uri": "--privileged"},
            "container_spec.image_uri: must be an image reference",
        ),
        ({"image_uri": "localhost/server:1 --rm"}, "container_spec.image_uri: must be an image"),
        (
            {"image_uri": "x", "liveness_probe": {"exec": {"command": ["--privileged", "sh"]}}},
            "container_spec.liveness_probe.exec.command: must start with a program",
        ),
        (
            {"image_uri": "x", "startup_probe": {"period_seconds": 5}},
            "container_spec.startup_probe: give exactly one of http_get, tcp_socket or exec",
        ),
        (
            {"image_uri": "x", "healthProbe": {"httpGet": {}, "exec": {"command": ["true"]}}},
            "container_spec.healthProbe: give exactly one of http_get, tcp_socket or exec, not "
            "http_get and exec",
        ),
        (
            {"image_uri": "x", "liveness_probe": {"exec": {"command": []}}},
            "container_spec.liveness_probe.exec.command: List should have at least 1 item",
        ),
        (
            {"image_uri": "x", "startup_probe": {"http_get": {"path": "ready"}}},
            "container_spec.startup_probe.http_get.path: must be a path on the server",
        ),
        (
            {"image_uri": "x", "startup_probe": {"tcp_socket": {"port": 70000}}},
            "container_spec.startup_probe.tcp_socket.port: Input should be less than or equal "
            "to 65535",
        ),
        (
            {"image_uri": "x", "startup_probe": {"exec": {"command": ["a"]}, "period_seconds": 0}},
            "container_spec.startup_probe.period_seconds: Input should be greater than or equal "
            "to 1",
        ),
        (
            {"image_uri": "x", "env": [{"name": "AIP_HTTP_PORT", "value": "1"}]},
            "container_spec.env.0.name: AIP_HTTP_PORT is berth's to set",
        ),
        (
            {"image_uri": "x", "env": [{"name": "BERTH_HOME", "value": "/"}]},
            "container_spec.env.0.name: BERTH_HOME is berth's to set",
        ),
        (
            {"image_uri": "x", "env": [{"name": "A", "value": ""}, {"name": "1A", "value": ""}]},
            "container_spec.env.1.name: '1A' is not an environment variable name",
        ),
        (
            {"image_uri": "x", "env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
            "container_spec.env: A is given twice",
        ),
        (
            {"image_uri": "x", "env": [{"name": "A"}]},
            "container_spec.env.0.value: Field required",
        ),
        (
            {"image_uri": "x", "ports": [{"container_port": 8080}, {"container_port": 8081}]},
            "container_spec.ports: give at most one port",
        ),
        (
            {"image_uri": "x", "ports": [{"containerPort": 0}]},
            "container_spec.ports.0.containerPort: Input should be greater than or equal to 1",
        ),
        (
            {"image_uri": "x", "predictRoute": "predict"},
            "container_spec.predictRoute: must be a path on the server, starting with '/'",
        ),
        (
            {"image_uri": "x", "health_route": "health"},
            "container_spec.health_route: must be a path on the server, starting with '/'",
        ),
        (
            {"image_uri": "x", "invoke_route_prefix": "/v1/*"},
            "container_spec.invoke_route_prefix: only '/*' is accepted",
        ),
        (
            {"image_uri": "x", "shared_memory_size_mb": -1},
            "container_spec.shared_memory_size_mb: Input should be greater than or equal to 0",
        ),
        (
            {"image_uri": "x", "deployment_timeout": "30m"},
            "container_spec.deployment_timeout: write a duration in seconds such as '1800s'",
        ),
        (
            {"image_uri": "x", "deploymentTimeout": "7201s"},
            "container_spec.deploymentTimeout: Input should be less than or equal to 7200",
        ),
        (
            {"image_uri": "x", "deployment_timeout": "0s"},
            "container_spec.deployment_timeout: Input should be greater than 0",
        ),
        (
            {"image_uri": "x", "grpcPorts": [{"containerPort": 9000}]},
            "container_spec.grpcPorts: Extra inputs are not permitted",
        ),
        ({"image_uri": ""}, "container_spec.image_uri: String should have at least 1 character"),
    ],
)
def test_each_refusal_names_its_field(spec: dict[str, Any], message: str) -> None:
    assert message in _refusal(spec)


def test_a_task_needs_a_container_spec() -> None:
    with pytest.raises(InvalidParameter, match="give container_spec too, or leave task out"):
        CreateVersionRequest.model_validate({"source": "/models/m", "task": "llm/v1/chat"})


def test_a_version_needs_a_source_or_a_container_spec() -> None:
    with pytest.raises(InvalidParameter, match=r"Give source \(the artifact's path or URI\)"):
        CreateVersionRequest.model_validate({"description": "nothing"})


def test_a_task_is_an_llm_task() -> None:
    with pytest.raises(ValidationError, match="llm/v1/chat"):
        CreateVersionRequest.model_validate(
            {"container_spec": {"command": ["x"]}, "task": "llm/v1/rerank"}
        )
