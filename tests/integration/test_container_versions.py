"""Custom container versions against a real server: registered with and without an artifact,
in Vertex's snake_case or camelCase, shown back, refused with the field named, and an image
refused where the host runs none."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from berth.envs import OWN_ENVIRONMENT
from berth.runtime.probes import PROBE_DEFAULTS  # what the replica assumes
from tests.support.cli import Cli
from tests.support.deploy import entity, unique
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

MODELS = "/api/2.0/models"
SERVER_PY = "import os\nprint('would listen on', os.environ['AIP_HTTP_PORT'])\n"
SPEC = {
    "command": ["python", "server.py"],
    "args": ["--port", "$(AIP_HTTP_PORT)"],
    "env": [{"name": "MODEL_DIR", "value": "$(AIP_STORAGE_URI)"}],
    "predict_route": "/invocations",
    "health_route": "/ping",
    "deployment_timeout": "300s",
    "startup_probe": {"http_get": {"path": "/ping"}, "period_seconds": 2},
}
STORED = {
    **SPEC,
    "ports": [],
    "deployment_timeout": 300.0,
    "startup_probe": {**PROBE_DEFAULTS, "http_get": {"path": "/ping"}, "period_seconds": 2},
}
CAMEL = {
    "imageUri": "localhost/mlserver:1.6",
    "ports": [{"containerPort": 8080}],
    "predictRoute": "/v2/models/m/infer",
    "sharedMemorySizeMb": "1024",
    "healthProbe": {"tcpSocket": {"port": 8080}, "failureThreshold": 5},
}
CAMEL_STORED = {
    "image_uri": "localhost/mlserver:1.6",
    "command": [],
    "args": [],
    "env": [],
    "ports": [{"container_port": 8080}],
    "predict_route": "/v2/models/m/infer",
    "shared_memory_size_mb": 1024,
    "health_probe": {**PROBE_DEFAULTS, "tcp_socket": {"port": 8080}, "failure_threshold": 5},
}


@pytest.fixture
def cli(server: BerthServer) -> Cli:
    return Cli(server.url, server.token)


@pytest.fixture
def server_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "my-server"
    folder.mkdir()
    (folder / "server.py").write_text(SERVER_PY)
    return folder


def _model(api: httpx.Client) -> str:
    name = unique("container")
    created = api.post(MODELS, json={"name": name})
    assert created.status_code == 200, created.text
    return name


def _register(api: httpx.Client, name: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = api.post(f"{MODELS}/{name}/versions", json=body)
    assert answer.status_code == 200, answer.text
    version: dict[str, Any] = answer.json()["model_version"]
    return version


def _refused(answer: httpx.Response) -> str:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    return str(body["message"])


def _tgz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname="model")
    return buffer.getvalue()


def _artifact(server: BerthServer, name: str, version: str) -> Path:
    return server.home / "artifacts" / name / version


def _nothing_stored(api: httpx.Client, server: BerthServer, name: str) -> None:
    assert api.get(f"{MODELS}/{name}/versions").json() == {"model_versions": []}
    assert not (server.home / "artifacts" / name).exists()


def test_a_container_with_its_files_is_stored_and_shown(
    api: httpx.Client, server: BerthServer, server_folder: Path
) -> None:
    name = _model(api)
    body = {"source": str(server_folder), "container_spec": SPEC, "task": "llm/v1/chat"}
    version = _register(api, name, body)
    assert (version["format"], version["source"]) == ("container", str(server_folder))
    assert version["details"] == {
        "container_spec": STORED,
        "task": "llm/v1/chat",
        "environment": {"hash": None, "summary": OWN_ENVIRONMENT},
    }
    assert (_artifact(server, name, "1") / "server.py").read_text() == SERVER_PY
    shown = api.get(f"{MODELS}/{name}/versions/1").json()["model_version"]
    assert shown == version


def test_a_container_needs_no_files_and_reads_vertexs_camel_case(
    api: httpx.Client, server: BerthServer
) -> None:
    name = _model(api)
    version = _register(api, name, {"container_spec": CAMEL})
    assert (version["format"], version["source"]) == ("container", "")
    assert version["details"]["container_spec"] == CAMEL_STORED
    assert version["details"]["environment"]["hash"] is None
    assert "task" not in version["details"]
    assert list(_artifact(server, name, "1").iterdir()) == []
    again = _register(api, name, {"container_spec": CAMEL_STORED})
    assert again["details"]["container_spec"] == CAMEL_STORED


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"container_spec": {**SPEC, "startup_probe": {"period_seconds": 5}}},
            "container_spec.startup_probe: give exactly one of http_get, tcp_socket or exec",
        ),
        (
            {"container_spec": {"imageUri": "x", "env": [{"name": "AIP_MODE", "value": "x"}]}},
            "container_spec.env.0.name: AIP_MODE is berth's to set",
        ),
        (
            {"container_spec": {"args": ["serve"]}},
            "container_spec.command: give the command that starts the server",
        ),
        (
            {"container_spec": {"imageUri": "x", "grpcPorts": [{"containerPort": 1}]}},
            "container_spec.grpcPorts: Extra inputs are not permitted",
        ),
        (
            {"source": "/nowhere", "task": "llm/v1/chat"},
            "task llm/v1/chat says what a custom container's server answers: give "
            "container_spec too, or leave task out",
        ),
        (
            {"description": "no source"},
            "Give source (the artifact's path or URI), container_spec (a model server of your "
            "own), or both.",
        ),
    ],
)
def test_a_refused_registration_names_the_field_and_stores_nothing(
    api: httpx.Client, server: BerthServer, body: dict[str, Any], message: str
) -> None:
    name = _model(api)
    assert message in _refused(api.post(f"{MODELS}/{name}/versions", json=body))
    _nothing_stored(api, server, name)


def test_an_upload_takes_the_spec_as_a_form_field(
    api: httpx.Client, server: BerthServer, server_folder: Path
) -> None:
    name = _model(api)
    archive = {"file": ("server.tgz", _tgz(server_folder), "application/octet-stream")}
    url = f"{MODELS}/{name}/versions"
    bad = {"container_spec": json.dumps({"imageUri": "x", "ports": [{}, {}]})}
    assert "container_spec.ports.0.containerPort: Field required" in _refused(
        api.post(url, files=archive, data=bad)
    )
    garbled = api.post(url, files=archive, data={"container_spec": "{not json"})
    assert garbled.status_code == 400, garbled.text
    assert garbled.json()["message"].startswith("The container_spec form field is not JSON")
    _nothing_stored(api, server, name)
    good = {"container_spec": json.dumps(SPEC), "task": "llm/v1/embeddings"}
    answer = api.post(url, files=archive, data=good)
    assert answer.status_code == 200, answer.text
    details = answer.json()["model_version"]["details"]
    assert (details["container_spec"], details["task"]) == (STORED, "llm/v1/embeddings")


def test_an_endpoint_refuses_an_image_the_host_cannot_run(api: httpx.Client) -> None:
    name = _model(api)
    _register(api, name, {"container_spec": CAMEL})
    endpoint = unique("ep")
    config = {"served_entities": [entity(name, "1")]}
    answer = api.post("/api/2.0/serving-endpoints", json={"name": endpoint, "config": config})
    assert _refused(answer) == (
        f"served_entities[0] ({name}-1): model '{name}' version 1 is a custom container image, "
        "which this host cannot run: BERTH_REPLICAS__CONTAINER_RUNTIME=none turns image-backed "
        "replicas off. Or serve a container version without image_uri, which runs as a process "
        "in its own environment."
    )
    assert api.get(f"/api/2.0/serving-endpoints/{endpoint}").status_code == 404


def test_the_cli_registers_a_spec_file_and_shows_it(
    cli: Cli, server: BerthServer, server_folder: Path, tmp_path: Path
) -> None:
    spec_file = tmp_path / "container.yaml"
    spec_file.write_text(
        "command: [python, server.py]\n"
        "args: [--port, $(AIP_HTTP_PORT)]\n"
        "healthRoute: /ping\n"
        "startupProbe:\n"
        "  httpGet: {path: /ping}\n"
    )
    name = unique("cli-container")
    out = cli.ok("models", "register", name, "--container-spec", str(spec_file))
    assert out.strip() == f"Registered {name} version 1 (container: python server.py)."
    version = cli.json(
        "models", "register", name, str(server_folder), "--container-spec", str(spec_file),
        "--task", "llm/v1/completions", "--upload",
    )  # fmt: skip
    assert version["source"] == "upload:my-server.tar.gz"
    assert version["details"]["task"] == "llm/v1/completions"
    assert version["details"]["container_spec"]["health_route"] == "/ping"
    assert (_artifact(server, name, "2") / "server.py").is_file()  # the folder, unwrapped

    shown = cli.ok("models", "version", name, "2")
    rows = {" ".join(line.split()) for line in shown.splitlines()}
    assert {
        "format container",
        "image none: a process in the model's environment",
        "command line python server.py --port '$(AIP_HTTP_PORT)'",
        "port the one berth gives in AIP_HTTP_PORT",
        "predict route Vertex's default, in AIP_PREDICT_ROUTE",
        "health route /ping",
        "startup probe GET /ping, every 10 s, timeout 1 s, fails after 3, passes after 1, "
        "first after 0 s",
        "task llm/v1/completions",
    } <= rows, shown
    assert "--task says what a custom container answers" in cli.fails(
        "models", "register", name, str(server_folder), "--task", "llm/v1/chat", code=2
    )
    assert "Give PATH, --container-spec FILE, or both." in cli.fails(
        "models", "register", name, code=2
    )
