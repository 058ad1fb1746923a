"""The server process itself: health, readiness, the Databricks probe, auth, shutdown."""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Callable

import httpx
import pytest

from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


def test_health_and_readiness_need_no_token(server: BerthServer) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}


def test_databricks_probe_answers_without_token(server: BerthServer) -> None:
    body = httpx.get(f"{server.url}/.well-known/databricks-config").json()
    assert body["oidc_endpoint"].startswith(server.url)
    assert body["workspace_id"].isdigit()


def test_missing_and_wrong_tokens_are_unauthenticated(server: BerthServer) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = httpx.get(f"{server.url}/api/2.0/serving-endpoints", headers=headers)
        assert response.status_code == 401
        assert response.json()["error_code"] == "UNAUTHENTICATED"
        assert response.json()["message"]


def test_unknown_route_is_a_databricks_error(api: httpx.Client) -> None:
    response = api.get("/api/2.0/no-such-thing")
    assert response.status_code == 404
    assert set(response.json()) == {"error_code", "message"}


def test_generated_admin_token_is_private_and_works(
    make_server: Callable[..., BerthServer],
) -> None:
    started = make_server(BERTH_ADMIN_TOKEN="")
    token_file = started.home / "admin-token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    token = token_file.read_text().strip()
    assert token.startswith("bth_")
    with started.client(token) as client:
        assert client.get("/api/2.0/serving-endpoints").status_code == 200
    assert token in started.log_path.read_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_the_server_cleanly(
    make_server: Callable[..., BerthServer], sig: signal.Signals
) -> None:
    started = make_server()
    # uvicorn re-raises the signal once shut down, as supervisors expect.
    assert started.stop(sig) in (0, -sig, 128 + sig)
    log = started.log_path.read_text()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log


def test_json_bodies_need_no_content_type(server: BerthServer) -> None:
    """``curl -d`` sends form encoding; the API reads the body as JSON anyway."""
    name = "curl-" + os.urandom(4).hex()
    answer = httpx.post(
        f"{server.url}/api/2.0/models",
        content=f'{{"name": "{name}"}}',
        headers={
            "Authorization": f"Bearer {server.token}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"]["name"] == name
