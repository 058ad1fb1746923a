"""Registration reads only what it should: server-side paths for admins or under configured
roots and never inside $BERTH_HOME, remote URIs by allow-listed protocol and public host,
archives within caps, and errors that never list a folder's contents."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.deploy import ECHO, unique
from tests.support.identity import make_user
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


def new_model(client: httpx.Client) -> str:
    name = unique("reads")
    assert client.post("/api/2.0/models", json={"name": name}).status_code == 200
    return name


def register(client: httpx.Client, model: str, source: str) -> httpx.Response:
    return client.post(f"/api/2.0/models/{model}/versions", json={"source": source})


def upload(client: httpx.Client, model: str, data: bytes) -> httpx.Response:
    files = {"file": ("model.tgz", data, "application/octet-stream")}
    return client.post(f"/api/2.0/models/{model}/versions", files=files)


def tgz(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname="model")
    return buffer.getvalue()


@pytest.fixture
def reads_server(make_server: Callable[..., BerthServer], tmp_path: Path) -> BerthServer:
    shared = tmp_path / "shared-models"
    shared.mkdir()
    return make_server(
        BERTH_REGISTRY__SOURCE_ROOTS=f'["{shared}"]',
        BERTH_REGISTRY__MAX_UPLOAD_BYTES="200000",
        BERTH_REGISTRY__MAX_ARCHIVE_MEMBERS="50",
    )


def test_server_paths_are_for_admins_or_under_the_configured_roots(
    reads_server: BerthServer, tmp_path: Path
) -> None:
    outside = shutil.copytree(ECHO, tmp_path / "anywhere")
    inside = shutil.copytree(ECHO, tmp_path / "shared-models" / "echo")
    with reads_server.client() as api:
        _, user = make_user(api, reads_server, f"reader-{uuid.uuid4().hex[:6]}")
        with user:
            model = new_model(user)
            refused = register(user, model, str(outside))
            assert refused.status_code == 403, refused.text
            assert "BERTH_REGISTRY__SOURCE_ROOTS" in refused.json()["message"]
            assert register(user, model, f"file://{outside}").status_code == 403
            assert register(user, model, str(inside)).status_code == 200
            assert upload(user, model, tgz(ECHO)).status_code == 200
        assert register(api, new_model(api), str(outside)).status_code == 200  # an admin


def test_nothing_inside_berth_home_is_read_even_through_a_link(
    reads_server: BerthServer, tmp_path: Path
) -> None:
    home = reads_server.home
    sneaky = shutil.copytree(ECHO, tmp_path / "shared-models" / "sneaky")
    (sneaky / "key.txt").symlink_to(home / "secret-key")
    with reads_server.client() as api:
        _, user = make_user(api, reads_server, f"sneak-{uuid.uuid4().hex[:6]}")
        with user:
            refused = register(user, new_model(user), str(sneaky))
            assert refused.status_code == 403, refused.text
            assert "data directory" in refused.json()["message"]
        for source in (str(home), str(home / "secret-key"), str(home / "berth.db")):
            answer = register(api, new_model(api), source)  # not even for an admin
            assert answer.status_code == 403, (source, answer.text)
    assert not any(p.name == "key.txt" for p in home.glob("artifacts/**/*"))


def test_remote_sources_need_an_allowed_protocol_and_a_public_host(
    reads_server: BerthServer,
) -> None:
    with reads_server.client() as api:
        model = new_model(api)
        refused = register(api, model, "memory://anything/model")
        assert refused.status_code == 400, refused.text
        assert "https" in refused.json()["message"]
        for uri in (
            f"https://127.0.0.1:{reads_server.port}/api/2.0/openapi.json",
            "https://localhost/model.tgz",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/model.tgz",
        ):
            answer = register(api, model, uri)
            assert answer.status_code == 403, (uri, answer.text)
            assert "internal address" in answer.json()["message"]


def test_uploads_and_archives_have_caps(reads_server: BerthServer, tmp_path: Path) -> None:
    many = shutil.copytree(ECHO, tmp_path / "many")
    for i in range(60):
        (many / f"f{i}.txt").write_text("x")
    big = shutil.copytree(ECHO, tmp_path / "big")
    (big / "weights.bin").write_bytes(os.urandom(320_000))  # incompressible
    with reads_server.client() as api:
        model = new_model(api)
        too_big = upload(api, model, tgz(big))
        assert too_big.status_code == 413, too_big.text
        assert "200000" in too_big.json()["message"]
        too_many = upload(api, model, tgz(many))
        assert too_many.status_code == 400, too_many.text
        assert "BERTH_REGISTRY__MAX_ARCHIVE_MEMBERS" in too_many.json()["message"]


def test_a_refused_folder_is_never_listed(reads_server: BerthServer, tmp_path: Path) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "payroll-2026.csv").write_text("x")
    with reads_server.client() as api:
        refused = register(api, new_model(api), str(folder))
    assert refused.status_code == 400, refused.text
    assert "payroll" not in refused.text
