"""The faces of the models API against a real server: the SDK, and the CLI run in a subprocess."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from berth.client import ApiError, BerthClient
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration

FAKES = Path(__file__).resolve().parents[1] / "fakes" / "models"
SUM_SCORE = FAKES / "sum_score"
SUM_MLFLOW = FAKES / "sum_mlflow"


@dataclass
class Cli:
    """Runs ``python -m berth models ...`` with BERTH_HOST and BERTH_TOKEN set."""

    host: str
    token: str

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DATABRICKS_"))}
        env.update(BERTH_HOST=self.host, BERTH_TOKEN=self.token)
        return subprocess.run(
            [sys.executable, "-m", "berth", "models", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.returncode == 0, f"berth models {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--output", "json"))

    def fails(self, *args: str, code: int = 1) -> str:
        done = self(*args)
        assert done.returncode == code, done.stdout + done.stderr
        return done.stderr


@pytest.fixture
def cli(server: BerthServer) -> Cli:
    return Cli(server.url, server.token)


def _unique() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}"


def test_register_a_folder_then_list_get_and_delete(cli: Cli, server: BerthServer) -> None:
    name = _unique()
    out = cli.ok("register", name, str(SUM_SCORE), "--description", "sums rows")
    assert out.strip() == f"Registered {name} version 1 (score_py)."
    version = cli.json("register", name, str(SUM_MLFLOW))
    assert (version["version"], version["format"]) == ("2", "mlflow")
    assert version["source"] == str(SUM_MLFLOW)

    listed = {m["name"]: m for m in cli.json("list")}
    assert listed[name]["latest_version"] == "2"
    assert listed[name]["description"] == "sums rows"
    table = cli.ok("list")
    assert name in table and "latest version" in table

    versions = cli.json("versions", name)
    assert [(v["version"], v["format"], v["source"]) for v in versions] == [
        ("1", "score_py", str(SUM_SCORE)),
        ("2", "mlflow", str(SUM_MLFLOW)),
    ]
    assert versions[0]["description"] == "sums rows"
    table = cli.ok("versions", name)
    assert "score_py" in table and "mlflow" in table and str(SUM_SCORE) in table

    shown = cli.json("get", name)
    assert (shown["name"], shown["creator"]) == (name, "admin")
    assert [v["version"] for v in shown["versions"]] == ["1", "2"]
    assert name in cli.ok("get", name)

    assert cli.ok("delete-version", name, "1").strip() == f"Deleted {name} version 1."
    assert [v["version"] for v in cli.json("versions", name)] == ["2"]
    assert cli.ok("delete", name).strip() == f"Deleted model {name}."
    assert name not in {m["name"] for m in cli.json("list")}
    assert not (server.home / "artifacts" / name).exists()


def test_register_uploads_an_archive(cli: Cli, tmp_path: Path) -> None:
    archive = tmp_path / "sum.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(SUM_SCORE, arcname="sum_score")
    name = _unique()
    version = cli.json("register", name, str(archive))
    assert (version["version"], version["format"]) == ("1", "score_py")
    assert version["source"] == "upload:sum.tgz"


def test_register_with_upload_packs_the_folder(cli: Cli) -> None:
    name = _unique()
    version = cli.json("register", name, str(SUM_MLFLOW), "--upload")
    assert (version["format"], version["source"]) == ("mlflow", "upload:sum_mlflow.tar.gz")


def test_a_refused_first_version_leaves_no_model(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text("def load_model():\n    return 1\n")
    name = _unique()
    stderr = cli.fails("register", name, str(tmp_path))
    assert "INVALID_PARAMETER_VALUE (400)" in stderr
    assert "score.py defines no top-level function predict" in stderr
    assert name not in {m["name"] for m in cli.json("list")}


def test_a_refused_later_version_keeps_the_model(cli: Cli, tmp_path: Path) -> None:
    name = _unique()
    cli.ok("register", name, str(SUM_SCORE))
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(_tgz_escaping())
    stderr = cli.fails("register", name, str(broken))
    assert "member '../evil.py' contains '..'" in stderr
    assert [v["version"] for v in cli.json("versions", name)] == ["1"]


def _tgz_escaping() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        info = tarfile.TarInfo("../evil.py")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    return buffer.getvalue()


def test_errors_exit_non_zero_with_the_server_message(cli: Cli) -> None:
    ghost = _unique()
    stderr = cli.fails("get", ghost)
    assert f"RESOURCE_DOES_NOT_EXIST (404): Model '{ghost}' does not exist." in stderr
    assert "RESOURCE_DOES_NOT_EXIST" in cli.fails("delete", ghost)
    assert "versions are positive integers" in cli.fails("delete-version", ghost, "x")
    assert "does not exist" in cli.fails("register", ghost, "/no/such/path", code=2)
    assert ghost not in {m["name"] for m in cli.json("list")}


def test_a_bad_token_is_reported(server: BerthServer) -> None:
    stderr = Cli(server.url, "bth_wrong").fails("list")
    assert "UNAUTHENTICATED (401)" in stderr


def test_sdk_registers_from_a_path_and_from_a_packed_folder(server: BerthServer) -> None:
    name = _unique()
    with BerthClient(server.url, server.token) as client:
        model = client.models.create(name, description="via sdk", tags={"k": "v"})
        assert (model["name"], model["tags"]) == (name, [{"key": "k", "value": "v"}])
        first = client.models.create_version(name, source=str(SUM_SCORE))
        second = client.models.create_version(name, archive=SUM_MLFLOW, description="packed")
        assert (first["version"], first["format"]) == ("1", "score_py")
        assert (second["version"], second["format"]) == ("2", "mlflow")
        assert second["source"] == "upload:sum_mlflow.tar.gz"
        assert client.models.get_version(name, 2) == second
        assert client.models.list_versions(name) == [first, second]
        assert client.models.get(name)["latest_version"] == "2"
        client.models.delete_version(name, "1")
        with pytest.raises(ApiError) as caught:
            client.models.get_version(name, 1)
        assert (caught.value.status, caught.value.error_code) == (404, "RESOURCE_DOES_NOT_EXIST")
        client.models.delete(name)
        assert name not in [m["name"] for m in client.models.list()]
