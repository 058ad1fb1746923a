"""The secrets API against real servers on SQLite and PostgreSQL: raw HTTP, the real
databricks-sdk, the CLI, and a search for the plaintext everywhere it must not be."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    InvalidParameterValue,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from databricks.sdk.service.workspace import ScopeBackendType

from berth.core.errors import BerthError
from tests.support.secrets import Reader, run_cli
from tests.support.servers import BerthServer

pytestmark = [pytest.mark.integration, pytest.mark.stores("sqlite", "postgresql")]

SECRETS = "/api/2.0/secrets"
Snapshot = tuple[Any, ...]


def _unique(prefix: str = "scope") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"} and body["error_code"] == code
    return str(body["message"])


@pytest.fixture
def scope(api: httpx.Client) -> Iterator[str]:
    """A scope holding ``k`` = ``v``."""
    name = _unique()
    _ok(api.post(f"{SECRETS}/scopes/create", json={"scope": name}))
    _ok(api.post(f"{SECRETS}/put", json={"scope": name, "key": "k", "string_value": "v"}))
    yield name
    api.post(f"{SECRETS}/scopes/delete", json={"scope": name})


def test_scopes_and_secrets_over_http(api: httpx.Client, server: BerthServer) -> None:
    name = _unique()
    create = {
        "scope": name,
        "initial_manage_principal": "users",
        "scope_backend_type": "DATABRICKS",
    }
    assert _ok(api.post(f"{SECRETS}/scopes/create", json=create)) == {}
    assert {"name": name, "backend_type": "DATABRICKS"} in _ok(api.get(f"{SECRETS}/scopes/list"))[
        "scopes"
    ]
    assert _ok(api.get(f"{SECRETS}/list", params={"scope": name})) == {"secrets": []}

    text = {"scope": name, "key": "text", "string_value": "sk-ünïcode"}
    binary = {
        "scope": name,
        "key": "bin.ary_1",
        "bytes_value": base64.b64encode(b"\0\xff").decode(),
    }
    assert _ok(api.post(f"{SECRETS}/put", json=text)) == {}
    assert _ok(api.post(f"{SECRETS}/put", json=binary)) == {}
    listed = _ok(api.get(f"{SECRETS}/list", params={"scope": name}))["secrets"]
    assert [s["key"] for s in listed] == ["bin.ary_1", "text"]
    assert all(set(s) == {"key", "last_updated_timestamp"} for s in listed)
    assert all(s["last_updated_timestamp"] > 1_600_000_000_000 for s in listed)
    reader = Reader(server)
    assert reader.reveal(name, "text") == "sk-ünïcode".encode()
    assert reader.reveal(name, "bin.ary_1") == b"\0\xff"

    _ok(api.post(f"{SECRETS}/put", json={**text, "string_value": "rotated"}))
    after = {
        s["key"]: s for s in _ok(api.get(f"{SECRETS}/list", params={"scope": name}))["secrets"]
    }
    assert after["text"]["last_updated_timestamp"] >= listed[1]["last_updated_timestamp"]
    assert reader.reveal(name, "text") == b"rotated"

    assert _ok(api.post(f"{SECRETS}/delete", json={"scope": name, "key": "text"})) == {}
    assert [
        s["key"] for s in _ok(api.get(f"{SECRETS}/list", params={"scope": name}))["secrets"]
    ] == ["bin.ary_1"]
    assert _ok(api.post(f"{SECRETS}/scopes/delete", json={"scope": name})) == {}
    assert name not in [s["name"] for s in _ok(api.get(f"{SECRETS}/scopes/list"))["scopes"]]
    _ok(api.post(f"{SECRETS}/scopes/create", json={"scope": name}))
    assert _ok(api.get(f"{SECRETS}/list", params={"scope": name})) == {"secrets": []}
    _ok(api.post(f"{SECRETS}/scopes/delete", json={"scope": name}))


def test_the_generated_key_file_is_private(server: BerthServer) -> None:
    assert oct((server.home / "secret-key").stat().st_mode & 0o777) == "0o600"


BAD_NAME = "use 1 to 128 characters among letters, digits, '_', '.' and '-'"
# (method, path, body or query with SCOPE standing for the existing scope, status, code, text)
ERRORS: list[tuple[str, str, dict[str, Any], int, str, str]] = [
    (
        "POST",
        "/scopes/create",
        {"scope": "SCOPE"},
        409,
        "RESOURCE_ALREADY_EXISTS",
        "already exists",
    ),
    *[
        ("POST", "/scopes/create", {"scope": bad}, 400, "INVALID_PARAMETER_VALUE", BAD_NAME)
        for bad in ["", "a b", "a/b", "naïve", "x" * 129]
    ],
    ("POST", "/scopes/create", {}, 400, "INVALID_PARAMETER_VALUE", "scope: Field required"),
    (
        "POST",
        "/scopes/create",
        {"scope": "new-scope", "scope_backend_type": "AZURE_KEYVAULT"},
        400,
        "INVALID_PARAMETER_VALUE",
        "scope_backend_type: Input should be 'DATABRICKS'",
    ),
    ("POST", "/scopes/delete", {"scope": "ghost"}, 404, "RESOURCE_DOES_NOT_EXIST", "'ghost'"),
    (
        "POST",
        "/put",
        {"scope": "ghost", "key": "k", "string_value": "x"},
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Secret scope 'ghost' does not exist",
    ),
    *[
        (
            "POST",
            "/put",
            {"scope": "SCOPE", "key": bad, "string_value": "x"},
            400,
            "INVALID_PARAMETER_VALUE",
            BAD_NAME,
        )
        for bad in ["", "a:b", "k" * 129]
    ],
    *[
        (
            "POST",
            "/put",
            {"scope": "SCOPE", "key": "k", **values},
            400,
            "INVALID_PARAMETER_VALUE",
            "Give exactly one of string_value and bytes_value",
        )
        for values in [{}, {"string_value": "a", "bytes_value": "YQ=="}]
    ],
    *[
        (
            "POST",
            "/put",
            {"scope": "SCOPE", "key": "k", "bytes_value": bad},
            400,
            "INVALID_PARAMETER_VALUE",
            "is not valid base64",
        )
        for bad in ["not base64!", "YQ", "YQ==YQ=="]
    ],
    (
        "POST",
        "/put",
        {"scope": "SCOPE", "key": "k", "string_value": "é" * (64 * 1024 + 1)},
        400,
        "INVALID_PARAMETER_VALUE",
        "is 131074 bytes; secret values may be at most 131072 bytes (128 KiB)",
    ),
    ("GET", "/list", {"scope": "ghost"}, 404, "RESOURCE_DOES_NOT_EXIST", "'ghost'"),
    ("GET", "/list", {}, 400, "INVALID_PARAMETER_VALUE", "scope: Field required"),
    (
        "POST",
        "/delete",
        {"scope": "SCOPE", "key": "nope"},
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Secret 'nope' does not exist in scope",
    ),
    ("POST", "/delete", {"scope": "ghost", "key": "k"}, 404, "RESOURCE_DOES_NOT_EXIST", "'ghost'"),
    (
        "POST",
        "/delete",
        {"scope": "SCOPE", "key": "k", "extra": 1},
        400,
        "INVALID_PARAMETER_VALUE",
        "extra: Extra inputs are not permitted",
    ),
]


def _snapshot(api: httpx.Client, server: BerthServer, scope: str) -> Snapshot:
    scopes = _ok(api.get(f"{SECRETS}/scopes/list"))["scopes"]
    secrets = _ok(api.get(f"{SECRETS}/list", params={"scope": scope}))["secrets"]
    return sorted(s["name"] for s in scopes), secrets, Reader(server).reveal(scope, "k")


@pytest.mark.parametrize(("method", "path", "payload", "status", "code", "text"), ERRORS)
def test_errors_leave_the_store_unchanged(
    api: httpx.Client,
    server: BerthServer,
    scope: str,
    method: str,
    path: str,
    payload: dict[str, Any],
    status: int,
    code: str,
    text: str,
) -> None:
    payload = {k: scope if v == "SCOPE" else v for k, v in payload.items()}
    before = _snapshot(api, server, scope)
    if method == "GET":
        response = api.get(SECRETS + path, params=payload)
    else:
        response = api.post(SECRETS + path, json=payload)
    assert text in _error(response, status, code)
    assert _snapshot(api, server, scope) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/scopes/create"),
        ("GET", "/scopes/list"),
        ("POST", "/scopes/delete"),
        ("POST", "/put"),
        ("GET", "/list"),
        ("POST", "/delete"),
    ],
)
def test_every_route_needs_a_token(server: BerthServer, method: str, path: str) -> None:
    response = httpx.request(method, server.url + SECRETS + path, json={"scope": "s"})
    _error(response, 401, "UNAUTHENTICATED")


def test_the_databricks_sdk_works_unchanged(
    server: BerthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CONFIG_FILE", "DATABRICKS_CLIENT_ID"):
        monkeypatch.delenv(variable, raising=False)
    w = WorkspaceClient(host=server.url, token=server.token)
    name = _unique("sdk")
    w.secrets.create_scope(
        scope=name, initial_manage_principal="users", scope_backend_type=ScopeBackendType.DATABRICKS
    )
    listed = {s.name: s for s in w.secrets.list_scopes()}
    assert listed[name].backend_type is ScopeBackendType.DATABRICKS
    w.secrets.put_secret(name, "token", string_value="sk-from-sdk")
    w.secrets.put_secret(name, "blob", bytes_value=base64.b64encode(b"\x01\x02").decode())
    keys = {s.key: s.last_updated_timestamp for s in w.secrets.list_secrets(name)}
    assert set(keys) == {"token", "blob"} and all(
        t and t > 1_600_000_000_000 for t in keys.values()
    )
    assert Reader(server).reveal(name, "token") == b"sk-from-sdk"

    with pytest.raises(ResourceAlreadyExists):
        w.secrets.create_scope(scope=name)
    with pytest.raises(ResourceDoesNotExist):
        w.secrets.list_secrets(_unique("ghost"))
    with pytest.raises(InvalidParameterValue, match="exactly one"):
        w.secrets.put_secret(name, "token")
    w.secrets.delete_secret(name, "blob")
    assert [s.key for s in w.secrets.list_secrets(name)] == ["token"]
    with pytest.raises(ResourceDoesNotExist):
        w.secrets.delete_secret(name, "blob")
    w.secrets.delete_scope(name)
    assert name not in {s.name for s in w.secrets.list_scopes()}


def test_a_value_is_never_in_plain_text_on_disk_or_in_answers(
    make_server: Callable[..., BerthServer], store_kind: str
) -> None:
    marker = f"PLAIN-{uuid.uuid4().hex}-TEXT"
    as_base64 = base64.b64encode(marker.encode()).decode()
    started = make_server()
    name = _unique()
    answers: list[str] = []
    with started.client() as api:
        for method, path, payload in [
            ("POST", "/scopes/create", {"scope": name}),
            ("POST", "/put", {"scope": name, "key": "s", "string_value": marker}),
            ("POST", "/put", {"scope": name, "key": "b", "bytes_value": as_base64}),
            ("POST", "/put", {"scope": name, "key": "bad key", "string_value": marker}),
            (
                "POST",
                "/put",
                {"scope": name, "key": "k", "string_value": marker, "bytes_value": "x"},
            ),
            ("POST", "/put", {"scope": name, "key": "k", "string_value": marker * 4000}),
            ("POST", "/put", {"scope": name, "key": "k", "bytes_value": marker}),
            ("POST", "/put", {"scope": "ghost", "key": "k", "string_value": marker}),
            ("POST", "/put", {"scope": name, "key": "k", "string_value": [marker]}),
            ("POST", "/put", {"scope": name, "key": "k", "string_value": marker, "x": marker[:-1]}),
            ("GET", "/scopes/list", {}),
            ("GET", "/list", {"scope": name}),
        ]:
            if method == "GET":
                answers.append(api.get(SECRETS + path, params=payload).text)
            else:
                answers.append(api.post(SECRETS + path, json=payload).text)
        answers.append(api.get("/api/2.0/openapi.json").text)
    assert Reader(started).reveal(name, "s") == Reader(started).reveal(name, "b") == marker.encode()
    started.stop()

    for answer in answers:
        assert marker not in answer and as_base64 not in answer and marker[:-1] not in answer
    searched = [path for path in started.home.rglob("*") if path.is_file()]
    assert started.log_path in searched and started.home / "secret-key" in searched
    if store_kind == "sqlite":
        assert started.home / "berth.db" in searched
    for path in searched:
        content = path.read_bytes()
        for needle in (marker, as_base64, marker[:-1]):
            assert needle.encode() not in content, f"{needle!r} found in {path}"


def test_a_configured_key_is_used_and_no_key_file_written(
    make_server: Callable[..., BerthServer],
) -> None:
    configured = base64.urlsafe_b64encode(os.urandom(32)).decode()
    started = make_server(BERTH_SECRET_KEY=configured)
    name = _unique()
    with started.client() as api:
        _ok(api.post(f"{SECRETS}/scopes/create", json={"scope": name}))
        _ok(api.post(f"{SECRETS}/put", json={"scope": name, "key": "k", "string_value": "v"}))
    assert not (started.home / "secret-key").exists()
    assert Reader(started, configured).reveal(name, "k") == b"v"
    other = base64.urlsafe_b64encode(os.urandom(32)).decode()
    with pytest.raises(BerthError, match="cannot be decrypted"):
        Reader(started, other).reveal(name, "k")


def test_the_cli(server: BerthServer, tmp_path: Path) -> None:
    def ok(*args: str, stdin: str = "") -> str:
        done = run_cli(server, *args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout

    name = _unique("cli")
    assert ok("create-scope", name).strip() == f"Created secret scope {name}."
    assert {"name": name, "backend_type": "DATABRICKS"} in json.loads(
        ok("list-scopes", "-o", "json")
    )
    assert name in ok("list-scopes")
    assert ok("put", name, "flag", "--value", "from-flag").strip() == (
        f"Stored secret flag in scope {name}."
    )
    (tmp_path / "value.bin").write_bytes(b"from-file\n\xff")
    ok("put", name, "file", "--from-file", str(tmp_path / "value.bin"))
    ok("put", name, "piped", stdin="from-stdin\n")
    reader = Reader(server)
    assert reader.reveal(name, "flag") == b"from-flag"
    assert reader.reveal(name, "file") == b"from-file\n\xff"
    assert reader.reveal(name, "piped") == b"from-stdin"

    listed = json.loads(ok("list", name, "--output", "json"))
    assert [s["key"] for s in listed] == ["file", "flag", "piped"]
    table = ok("list", name)
    assert "last updated" in table and "piped" in table and "from-flag" not in table
    assert ok("delete", name, "flag").strip() == f"Deleted secret flag from scope {name}."
    assert [s["key"] for s in json.loads(ok("list", name, "-o", "json"))] == ["file", "piped"]

    both = run_cli(
        server, "put", name, "k", "--value", "v", "--from-file", str(tmp_path / "value.bin")
    )
    assert both.returncode == 2 and "at most one of --value and --from-file" in both.stderr
    missing = run_cli(server, "delete", name, "flag")
    assert missing.returncode == 1
    assert "RESOURCE_DOES_NOT_EXIST (404)" in missing.stderr
    assert ok("delete-scope", name).strip() == f"Deleted secret scope {name} and its secrets."
    gone = run_cli(server, "list", name)
    assert gone.returncode == 1 and f"Secret scope '{name}' does not exist" in gone.stderr
