"""Real users for tests: made through SCIM, with a token made on their behalf by an admin."""

from __future__ import annotations

import httpx

from tests.support.servers import BerthServer

RUN_MODEL_CODE = {"value": "run-model-code"}


def make_user(
    api: httpx.Client, server: BerthServer, name: str, *, entitled: bool = True
) -> tuple[str, httpx.Client]:
    """(the user's SCIM id, a client that authenticates as the user); close the client.

    ``entitled`` users may register and deploy model versions (the run-model-code
    entitlement): what most tests' users do beside what they test."""
    body: dict[str, object] = {"userName": name}
    if entitled:
        body["entitlements"] = [RUN_MODEL_CODE]
    made = api.post("/api/2.0/preview/scim/v2/Users", json=body)
    assert made.status_code == 200, made.text
    token = api.post(
        "/api/2.0/token-management/on-behalf-of/tokens",
        json={"application_id": name, "comment": "made by a test"},
    )
    assert token.status_code == 200, token.text
    return str(made.json()["id"]), server.client(token.json()["token_value"])
