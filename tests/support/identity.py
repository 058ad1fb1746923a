"""Real users for tests: made through SCIM, with a token made on their behalf by an admin."""

from __future__ import annotations

import httpx

from tests.support.servers import BerthServer


def make_user(api: httpx.Client, server: BerthServer, name: str) -> tuple[str, httpx.Client]:
    """(the user's SCIM id, a client that authenticates as the user); close the client."""
    made = api.post("/api/2.0/preview/scim/v2/Users", json={"userName": name})
    assert made.status_code == 200, made.text
    token = api.post(
        "/api/2.0/token-management/on-behalf-of/tokens",
        json={"application_id": name, "comment": "made by a test"},
    )
    assert token.status_code == 200, token.text
    return str(made.json()["id"]), server.client(token.json()["token_value"])
