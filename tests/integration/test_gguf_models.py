"""Open LLMs as GGUF files through the real server: a file or a folder holding one registers
with the figures its header gives, through the REST API, the SDK and the CLI."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from berth.client import BerthClient
from tests.support.cli import Cli
from tests.support.deploy import unique
from tests.support.llm import SMOLLM2_FILE, smollm2_gguf
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

SMOLLM2 = {
    "weights": SMOLLM2_FILE,
    "architecture": "llama",
    "name": "Smollm2 135M 8k Lc100K Mix1 Ep2",
    "parameter_count": 134_515_008,
    "context_length": 8192,
    "embedding_length": 576,
    "quantization": "Q4_1",
    "pooling_type": None,
    "task": "llm/v1/chat",
    "file_size_bytes": 98_362_432,
}


@pytest.fixture
def client(server: BerthServer) -> Iterator[BerthClient]:
    with BerthClient(server.url, server.token) as sdk:
        yield sdk


def _figures(version: dict[str, Any]) -> dict[str, Any]:
    details = dict(version["details"])
    assert details.pop("chat_template").startswith("{% for message in messages %}")
    assert details.pop("environment")["spec"]["requirements"][0].startswith("xllamacpp==")
    return details


def test_the_smollm2_file_registers_with_its_figures(
    client: BerthClient, server: BerthServer
) -> None:
    name = unique("smollm2")
    version = client.models.register(name, smollm2_gguf())
    assert (version["format"], version["source"]) == ("gguf", str(smollm2_gguf()))
    assert _figures(version) == SMOLLM2
    assert client.models.get_version(name, 1) == version
    stored = server.home / "artifacts" / name / "1"
    assert [p.name for p in stored.iterdir()] == [SMOLLM2_FILE]
    assert (stored / SMOLLM2_FILE).stat().st_size == SMOLLM2["file_size_bytes"]


def test_a_folder_holding_the_file_registers_alike(client: BerthClient, tmp_path: Path) -> None:
    (tmp_path / SMOLLM2_FILE).symlink_to(smollm2_gguf())
    version = client.models.register(unique("smollm2"), tmp_path)
    assert (version["format"], version["source"]) == ("gguf", str(tmp_path))
    assert _figures(version) == SMOLLM2


def test_the_cli_uploads_the_file_and_shows_its_figures(server: BerthServer) -> None:
    cli = Cli(server.url, server.token)
    name = unique("smollm2")
    out = cli.ok("models", "register", name, str(smollm2_gguf()), "--upload")
    assert out.strip() == (
        f"Registered {name} version 1 (gguf: llama, 135M parameters, context 8,192, Q4_1)."
    )
    assert cli.json("models", "version", name, "1")["source"] == f"upload:{SMOLLM2_FILE}"
    shown = cli.ok("models", "version", name, "1")
    for line in (
        "architecture      llama",
        "parameters        135M (134,515,008)",
        "context length    8,192 tokens",
        "quantization      Q4_1",
        f"weights           {SMOLLM2_FILE} (98.4 MB)",
    ):
        assert line in shown
    assert "llama, 135M parameters, context 8,192, Q4_1" in cli.ok("models", "versions", name)


def test_a_folder_with_two_gguf_files_is_a_400(api: httpx.Client, tmp_path: Path) -> None:
    for copy in ("a.gguf", "b.gguf"):
        (tmp_path / copy).symlink_to(smollm2_gguf())
    name = _model(api)
    answer = api.post(f"/api/2.0/models/{name}/versions", json={"source": str(tmp_path)})
    assert answer.status_code == 400
    assert answer.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"source '{tmp_path}' holds 2 .gguf files; a model version is one model: "
        "register a folder holding exactly one, or the .gguf file itself.",
    }


def _truncated() -> bytes:
    with smollm2_gguf().open("rb") as whole:
        return whole.read(300_000)  # inside the vocabulary


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0), f"declares {2**40} tensors;"),
        (_truncated, "ends inside its header: the length of item 19928 of 'tokenizer.ggml"),
    ],
)
def test_a_hostile_or_truncated_upload_is_a_400_naming_the_problem(
    api: httpx.Client, make: Callable[[], bytes], expected: str
) -> None:
    name = _model(api)
    data = make()
    files = {"file": ("evil.gguf", data, "application/octet-stream")}
    answer = api.post(f"/api/2.0/models/{name}/versions", files=files)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["message"].startswith("evil.gguf in uploaded file 'evil.gguf' ")
    assert expected in body["message"]
    assert api.get(f"/api/2.0/models/{name}/versions").json().get("model_versions", []) == []


def _model(api: httpx.Client) -> str:
    name = unique("gguf")
    assert api.post("/api/2.0/models", json={"name": name}).status_code == 200
    return name
