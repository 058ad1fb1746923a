"""The models API against real servers on SQLite and PostgreSQL: shapes, errors, artifacts."""

from __future__ import annotations

import io
import shutil
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from berth.core.endpoint_config import EndpointConfigDoc, ServedEntity, TrafficRoute
from berth.envs import OWN_ENVIRONMENT
from berth.store.db import Database
from berth.store.tables import EndpointRow
from tests.support.servers import BerthServer

pytestmark = [pytest.mark.integration, pytest.mark.stores("sqlite", "postgresql")]

FAKES = Path(__file__).resolve().parents[1] / "fakes" / "models"
SUM_SCORE = FAKES / "sum_score"
SUM_MLFLOW = FAKES / "sum_mlflow"
MODELS = "/api/2.0/models"
MODEL_KEYS = (
    "name description tags creator creation_timestamp last_updated_timestamp latest_version"
)


def _unique(prefix: str = "model") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def _model(api: httpx.Client, description: str = "") -> str:
    name = _unique()
    response = api.post(MODELS, json={"name": name, "description": description})
    assert response.status_code == 200, response.text
    return name


def _register(api: httpx.Client, name: str, source: Path | str) -> dict[str, Any]:
    response = api.post(f"{MODELS}/{name}/versions", json={"source": str(source)})
    assert response.status_code == 200, response.text
    version: dict[str, Any] = response.json()["model_version"]
    return version


def _upload(api: httpx.Client, name: str, filename: str, data: bytes) -> httpx.Response:
    return api.post(
        f"{MODELS}/{name}/versions",
        files={"file": (filename, data, "application/octet-stream")},
        data={"description": "uploaded"},
    )


def _tgz(folder: Path, arcname: str = "model") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        tf.add(folder, arcname=arcname)
    return buffer.getvalue()


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _tar_with(name: str, linkname: str = "") -> bytes:
    """A tar of score.py and one more member: a file, or a symlink when ``linkname`` is set."""
    buffer, info = io.BytesIO(), tarfile.TarInfo(name)
    info.type, info.linkname = (tarfile.SYMTYPE, linkname) if linkname else (tarfile.REGTYPE, "")
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        tf.add(SUM_SCORE / "score.py", arcname="score.py")
        tf.addfile(info, io.BytesIO(b""))
    return buffer.getvalue()


def _artifacts(server: BerthServer) -> Path:
    return server.home / "artifacts"


def _assert_nothing_written(api: httpx.Client, server: BerthServer, name: str) -> None:
    assert api.get(f"{MODELS}/{name}/versions").json() == {"model_versions": []}
    assert api.get(f"{MODELS}/{name}").json()["model"]["latest_version"] is None
    assert not (_artifacts(server) / name).exists()
    assert [p.name for p in _artifacts(server).iterdir() if p.name.startswith("~")] == []


def test_model_create_get_list_delete(api: httpx.Client) -> None:
    name = _unique()
    body = {"name": name, "description": "sums", "tags": [{"key": "team", "value": "ml"}]}
    made = api.post(MODELS, json=body)
    assert made.status_code == 200, made.text
    model = made.json()["model"]
    assert sorted(model) == sorted(MODEL_KEYS.split())
    assert model["name"] == name
    assert model["description"] == "sums"
    assert model["tags"] == [{"key": "team", "value": "ml"}]
    assert model["creator"] == "admin"
    assert model["creation_timestamp"] == model["last_updated_timestamp"] > 1_600_000_000_000
    assert model["latest_version"] is None
    assert api.get(f"{MODELS}/{name}").json() == {"model": model}
    assert model in api.get(MODELS).json()["models"]

    deleted = api.delete(f"{MODELS}/{name}")
    assert (deleted.status_code, deleted.json()) == (200, {})
    assert name not in [m["name"] for m in api.get(MODELS).json()["models"]]
    _error(api.get(f"{MODELS}/{name}"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_duplicate_model_is_refused(api: httpx.Client) -> None:
    name = _model(api, description="first")
    message = _error(api.post(MODELS, json={"name": name}), 409, "RESOURCE_ALREADY_EXISTS")
    assert message == f"Model '{name}' already exists."
    assert api.get(f"{MODELS}/{name}").json()["model"]["description"] == "first"


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "..", "x" * 256, "naïve"])
def test_bad_model_names_are_refused(api: httpx.Client, bad: str) -> None:
    before = api.get(MODELS).json()
    message = _error(api.post(MODELS, json={"name": bad}), 400, "INVALID_PARAMETER_VALUE")
    assert "use 1 to 255 characters among letters, digits, '_', '.' and '-'" in message
    assert api.get(MODELS).json() == before


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "name: Field required"),
        ({"name": "ok", "tags": {"a": "b"}}, "tags: Input should be a valid list"),
        ({"name": "ok", "tags": [{"key": ""}]}, "tags.0.key: String should have at least 1"),
        ({"name": "ok", "colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_model_bodies_are_refused(
    api: httpx.Client, body: dict[str, Any], expected: str
) -> None:
    before = api.get(MODELS).json()
    assert expected in _error(api.post(MODELS, json=body), 400, "INVALID_PARAMETER_VALUE")
    assert api.get(MODELS).json() == before


def test_unknown_model_is_not_found_everywhere(api: httpx.Client, server: BerthServer) -> None:
    ghost = _unique("ghost")
    for response in (
        api.get(f"{MODELS}/{ghost}"),
        api.delete(f"{MODELS}/{ghost}"),
        api.get(f"{MODELS}/{ghost}/versions"),
        api.get(f"{MODELS}/{ghost}/versions/1"),
        api.delete(f"{MODELS}/{ghost}/versions/1"),
        api.post(f"{MODELS}/{ghost}/versions", json={"source": str(SUM_SCORE)}),
    ):
        message = _error(response, 404, "RESOURCE_DOES_NOT_EXIST")
        assert message == f"Model '{ghost}' does not exist."
    assert not (_artifacts(server) / ghost).exists()


def test_register_score_py_from_a_path(api: httpx.Client, server: BerthServer) -> None:
    name = _model(api)
    response = api.post(
        f"{MODELS}/{name}/versions", json={"source": str(SUM_SCORE), "description": "v1"}
    )
    assert response.status_code == 200, response.text
    version = response.json()["model_version"]
    target = _artifacts(server) / name / "1"
    assert version == {
        "name": name,
        "version": "1",
        "format": "score_py",
        "status": "READY",
        "source": str(SUM_SCORE),
        "creation_timestamp": version["creation_timestamp"],
        "creator": "admin",
        "description": "v1",
        "artifact_uri": target.as_uri(),
        "details": {
            "python_version": "3.11",
            "model_artifact_version": "3.0",
            "has_runtime_yaml": True,
            "env_files": ["requirements.txt"],
            "environment": {"hash": None, "summary": OWN_ENVIRONMENT},
        },
    }
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in SUM_SCORE.iterdir())
    assert (target / "score.py").read_bytes() == (SUM_SCORE / "score.py").read_bytes()
    assert api.get(f"{MODELS}/{name}/versions/1").json() == {"model_version": version}
    assert api.get(f"{MODELS}/{name}/versions").json() == {"model_versions": [version]}
    model = api.get(f"{MODELS}/{name}").json()["model"]
    assert model["latest_version"] == "1"
    assert model["last_updated_timestamp"] >= version["creation_timestamp"]


def test_register_mlflow_model_from_a_file_uri(api: httpx.Client, server: BerthServer) -> None:
    name = _model(api)
    version = _register(api, name, SUM_MLFLOW.as_uri())
    assert (version["format"], version["source"]) == ("mlflow", SUM_MLFLOW.as_uri())
    environment = version["details"].pop("environment")
    assert environment["spec"]["python"] == "3.11"
    assert environment["spec"]["requirements"][0] == "mlflow-skinny"
    assert len(environment["hash"]) == 64
    assert version["details"] == {
        "loader_module": "sum_loader",
        "python_version": "3.11.7",
        "mlflow_version": "3.17.2",
        "flavors": ["python_function"],
        "has_signature": True,
        "env_files": ["python_env.yaml", "requirements.txt"],
    }
    assert (_artifacts(server) / name / "1" / "code" / "sum_loader.py").is_file()


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("sum.tar.gz", _tgz(SUM_SCORE, arcname="sum_score")),
        ("sum.tgz", _tgz(SUM_SCORE, arcname=".")),
        ("sum.zip", _zip(SUM_SCORE)),
    ],
)
def test_register_an_uploaded_archive(
    api: httpx.Client, server: BerthServer, filename: str, data: bytes
) -> None:
    name = _model(api)
    response = _upload(api, name, filename, data)
    assert response.status_code == 200, response.text
    version = response.json()["model_version"]
    assert version["format"] == "score_py"
    assert version["source"] == f"upload:{filename}"
    assert version["description"] == "uploaded"
    target = _artifacts(server) / name / "1"
    assert (target / "score.py").read_bytes() == (SUM_SCORE / "score.py").read_bytes()
    assert (target / "runtime.yaml").is_file()


def test_version_numbers_are_never_reused(api: httpx.Client, server: BerthServer) -> None:
    name = _model(api)
    assert [_register(api, name, SUM_SCORE)["version"] for _ in range(3)] == ["1", "2", "3"]
    assert api.delete(f"{MODELS}/{name}/versions/3").json() == {}
    assert not (_artifacts(server) / name / "3").exists()
    _error(api.get(f"{MODELS}/{name}/versions/3"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert _register(api, name, SUM_MLFLOW)["version"] == "4"
    listed = api.get(f"{MODELS}/{name}/versions").json()["model_versions"]
    assert [v["version"] for v in listed] == ["1", "2", "4"]
    assert api.get(f"{MODELS}/{name}").json()["model"]["latest_version"] == "4"

    assert api.delete(f"{MODELS}/{name}").json() == {}
    assert not (_artifacts(server) / name).exists()


@pytest.fixture
def broken_artifacts(tmp_path: Path) -> dict[str, Path]:
    syntax = Path(shutil.copytree(SUM_SCORE, tmp_path / "syntax"))
    (syntax / "score.py").write_text("def load_model():\n    return 1\n\ndef predict(data\n")
    no_predict = Path(shutil.copytree(SUM_SCORE, tmp_path / "no_predict"))
    (no_predict / "score.py").write_text("def load_model():\n    return 1\n")
    neither = tmp_path / "neither"
    neither.mkdir()
    (neither / "model.pkl").write_bytes(b"x")
    return {"syntax": syntax, "no_predict": no_predict, "neither": neither}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("/no/such/berth/model", "source '/no/such/berth/model' does not exist on the server's"),
        ("relative/model", "source 'relative/model' is a relative path;"),
        ("{syntax}", "score.py line 4: syntax error: '(' was never closed."),
        ("{no_predict}", "score.py defines no top-level function predict;"),
        (
            "{neither}",
            "No MLmodel file with a python_function flavor, no score.py defining load_model "
            "and predict, no .gguf file and no Hugging Face-style folder (config.json + "
            ".safetensors + tokenizer) were found in source '{neither}' (it holds 1 entry).",
        ),
        (str(SUM_SCORE / "score.py"), "is not a .tar.gz, .tgz or .zip archive."),
    ],
)
def test_bad_sources_are_refused_and_leave_nothing(
    api: httpx.Client,
    server: BerthServer,
    broken_artifacts: dict[str, Path],
    source: str,
    expected: str,
) -> None:
    name = _model(api)
    response = api.post(
        f"{MODELS}/{name}/versions", json={"source": source.format(**broken_artifacts)}
    )
    message = _error(response, 400, "INVALID_PARAMETER_VALUE")
    assert expected.format(**broken_artifacts) in message
    _assert_nothing_written(api, server, name)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_tar_with("../evil.py"), "member '../evil.py' contains '..' and would land outside"),
        (_tar_with("/tmp/evil.py"), "member '/tmp/evil.py' has an absolute path"),
        (_tar_with("link", "../../../etc/passwd"), "member 'link' links to '../../../etc/passwd'"),
        (b"not an archive", "uploaded file 'm.tgz' is not a .tar.gz, .tgz or .zip archive."),
    ],
)
def test_unsafe_or_bad_uploads_are_refused_and_leave_nothing(
    api: httpx.Client, server: BerthServer, data: bytes, expected: str
) -> None:
    name = _model(api)
    message = _error(_upload(api, name, "m.tgz", data), 400, "INVALID_PARAMETER_VALUE")
    assert expected in message
    _assert_nothing_written(api, server, name)


def test_badly_formed_version_requests_are_refused(api: httpx.Client, server: BerthServer) -> None:
    name = _model(api)
    url = f"{MODELS}/{name}/versions"
    cases = [
        (api.post(url, json={}), 400, "INVALID_PARAMETER_VALUE", "Give source (the artifact"),
        (
            api.post(url, content=b"{not json", headers={"content-type": "application/json"}),
            400,
            "BAD_REQUEST",
            "Malformed JSON",
        ),
        (
            api.post(url, files={"other": ("m.tgz", b"x")}),
            400,
            "INVALID_PARAMETER_VALUE",
            "needs the archive in a file field named 'file'",
        ),
        (
            api.post(url, content=b"x", headers={"content-type": "text/plain"}),
            400,
            "BAD_REQUEST",
            "Unsupported content type 'text/plain'",
        ),
        (api.get(f"{url}/one"), 400, "INVALID_PARAMETER_VALUE", "versions are positive integers"),
        (api.get(f"{url}/7"), 404, "RESOURCE_DOES_NOT_EXIST", f"Model '{name}' has no version 7."),
    ]
    for response, status, code, expected in cases:
        assert expected in _error(response, status, code)
    _assert_nothing_written(api, server, name)


@pytest.fixture
def store(server: BerthServer) -> Iterator[Database]:
    """The server's own store, to put endpoint rows in place the way the endpoints API does."""
    database = Database(server.database_url or f"sqlite:///{server.home / 'berth.db'}")
    yield database
    database.dispose()


def _serve(store: Database, endpoint: str, name: str, version: str, field: str) -> None:
    served = ServedEntity("a", entity_name=name, entity_version=version)
    config = EndpointConfigDoc(1, (served,), (TrafficRoute("a", 100),)).to_json()
    row = EndpointRow(id=uuid.uuid4().hex, name=endpoint, creator="admin", **{field: config})
    row.created_at = row.updated_at = 1
    row.ready, row.config_update = "NOT_READY", "NOT_UPDATING"
    with store.transaction() as session:
        session.add(row)


def _unserve(store: Database, *endpoints: str) -> None:
    with store.transaction() as session:
        for row in session.query(EndpointRow).filter(EndpointRow.name.in_(endpoints)):
            session.delete(row)


@pytest.mark.parametrize("field", ["config", "pending_config"])
def test_served_versions_and_their_models_cannot_be_deleted(
    api: httpx.Client, server: BerthServer, store: Database, field: str
) -> None:
    name = _model(api)
    _register(api, name, SUM_SCORE)
    _register(api, name, SUM_SCORE)
    endpoint = _unique("ep")
    _serve(store, endpoint, name, "1", field)
    try:
        message = _error(api.delete(f"{MODELS}/{name}/versions/1"), 409, "RESOURCE_CONFLICT")
        assert message.startswith(
            f"Version 1 of model '{name}' is served by endpoint(s) '{endpoint}'"
        )
        message = _error(api.delete(f"{MODELS}/{name}"), 409, "RESOURCE_CONFLICT")
        assert message.startswith(f"Model '{name}' is served by endpoint(s) '{endpoint}'")
        assert (_artifacts(server) / name / "1" / "score.py").is_file()
        listed = api.get(f"{MODELS}/{name}/versions").json()["model_versions"]
        assert [v["version"] for v in listed] == ["1", "2"]
        assert api.delete(f"{MODELS}/{name}/versions/2").json() == {}
    finally:
        _unserve(store, endpoint)
    assert api.delete(f"{MODELS}/{name}").json() == {}
    assert not (_artifacts(server) / name).exists()
