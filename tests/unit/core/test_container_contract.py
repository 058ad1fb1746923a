"""Vertex's contract with a custom container: AIP variables, $(VAR) expansion, env, argv."""

from __future__ import annotations

from typing import Any

import pytest

from berth.core.container_contract import (
    Deployment,
    Routes,
    aip_variables,
    command_line,
    container_env,
    container_name,
    effective_routes,
    expand,
    replica_image,
    replica_json,
)

DEPLOYMENT = Deployment(
    endpoint_id="e1d", deployed_model_id="chat-1", model_name="chat", storage_uri="file:///a/1"
)
BASE = "/v1/endpoints/e1d/deployedModels/chat-1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("--port=$(PORT)", "--port=8080"),
        ("$(PORT)$(HOST)", "8080localhost"),
        ("$(MISSING)", "$(MISSING)"),
        ("a $(MISSING) and $(PORT)", "a $(MISSING) and 8080"),
        ("$(EMPTY)x", "x"),
        ("$$(PORT)", "$(PORT)"),
        ("$$(MISSING)", "$(MISSING)"),
        ("$$$(PORT)", "$8080"),
        ("cost: $$5", "cost: $5"),
        ("$PORT ${PORT}", "$PORT ${PORT}"),
        ("$(PORT", "$(PORT"),
        ("trailing $", "trailing $"),
        ("$()", "$()"),
        ("$(A B)", "$(A B)"),
        ("no reference", "no reference"),
    ],
)
def test_expansion_is_kubernetes(text: str, expected: str) -> None:
    variables = {"PORT": "8080", "HOST": "localhost", "EMPTY": ""}
    assert expand(text, variables) == expected


def test_an_expanded_value_is_not_expanded_again() -> None:
    assert expand("$(A)", {"A": "$(B)", "B": "no"}) == "$(B)"


def test_routes_are_the_specs_else_vertexs_defaults_for_the_deployment() -> None:
    assert effective_routes({}, DEPLOYMENT) == Routes(f"{BASE}:predict", BASE, raw_invoke=False)
    given = {"predict_route": "/invocations", "health_route": "/ping", "invoke_route_prefix": "/*"}
    assert effective_routes(given, DEPLOYMENT) == Routes("/invocations", "/ping", raw_invoke=True)


def test_every_replica_learns_the_contract_from_aip_variables() -> None:
    spec = {"predict_route": "/v2/models/m/infer", "health_route": "/v2/health/ready"}
    assert aip_variables(spec, DEPLOYMENT, port=41234) == {
        "AIP_HTTP_PORT": "41234",
        "AIP_PREDICT_ROUTE": "/v2/models/m/infer",
        "AIP_HEALTH_ROUTE": "/v2/health/ready",
        "AIP_STORAGE_URI": "file:///a/1",
        "AIP_MODE": "PREDICTION",
        "AIP_MODE_VERSION": "1.0.0",
        "AIP_FRAMEWORK": "CUSTOM_CONTAINER",
        "AIP_DEPLOYED_MODEL_ID": "chat-1",
        "AIP_ENDPOINT_ID": "e1d",
        "AIP_MODEL_NAME": "chat",
    }


def test_without_an_artifact_there_is_no_storage_uri() -> None:
    bare = Deployment(endpoint_id="e", deployed_model_id="d", model_name="m")
    variables = aip_variables({}, bare, port=1)
    assert "AIP_STORAGE_URI" not in variables
    assert variables["AIP_PREDICT_ROUTE"] == "/v1/endpoints/e/deployedModels/d:predict"


def test_env_entries_expand_from_aip_variables_and_earlier_entries_only() -> None:
    spec: dict[str, Any] = {
        "env": [
            {"name": "LISTEN", "value": "127.0.0.1:$(AIP_HTTP_PORT)"},
            {"name": "URL", "value": "http://$(LISTEN)$(AIP_PREDICT_ROUTE)"},
            {"name": "EARLY", "value": "$(LATE)"},
            {"name": "LATE", "value": "late"},
            {"name": "LITERAL", "value": "$$(LISTEN)"},
            {"name": "HOSTS", "value": "$(HOME)"},
        ]
    }
    aip = aip_variables(spec, DEPLOYMENT, port=9000)
    env = container_env(spec, aip)
    assert env["LISTEN"] == "127.0.0.1:9000"
    assert env["URL"] == f"http://127.0.0.1:9000{BASE}:predict"
    assert env["EARLY"] == "$(LATE)"
    assert env["LATE"] == "late"
    assert env["LITERAL"] == "$(LISTEN)"
    assert env["HOSTS"] == "$(HOME)"  # the host's and the image's variables are not the spec's
    assert {key: env[key] for key in aip} == aip


def test_command_line_is_command_then_args_expanded_with_the_env() -> None:
    spec = {
        "command": ["mlflow", "models", "serve"],
        "args": ["--port", "$(AIP_HTTP_PORT)", "-m", "$(MODEL_DIR)", "$$(NOT_EXPANDED)"],
        "env": [{"name": "MODEL_DIR", "value": "$(AIP_STORAGE_URI)"}],
    }
    env = container_env(spec, aip_variables(spec, DEPLOYMENT, port=7000))
    assert command_line(spec, env) == [
        "mlflow",
        "models",
        "serve",
        "--port",
        "7000",
        "-m",
        "file:///a/1",
        "$(NOT_EXPANDED)",
    ]


def test_an_image_without_command_passes_only_its_args() -> None:
    spec = {"image_uri": "localhost/server:1", "args": ["--port=$(AIP_HTTP_PORT)"]}
    env = container_env(spec, aip_variables(spec, DEPLOYMENT, port=8080))
    assert command_line(spec, env) == ["--port=8080"]


def test_an_image_replica_is_told_apart_and_its_container_named_after_its_socket() -> None:
    assert replica_image(replica_json({"image_uri": "localhost/x:1"}, DEPLOYMENT)) == (
        "localhost/x:1"
    )
    assert replica_image(replica_json({"command": ["serve"]}, DEPLOYMENT)) is None
    assert container_name("/home/boxes/0123/ab12cd.sock") == "berth-ab12cd"
