"""The secrets resource of the SDK: ``/api/2.0/secrets``, in Databricks' JSON shapes.

Values only go to the server; no call answers one.
"""

from __future__ import annotations

import base64
from typing import Any

from berth.client.transport import Transport

BASE = "/api/2.0/secrets"

JsonObjects = list[dict[str, Any]]


class SecretsApi:
    """Create and delete secret scopes; put, list and delete the secrets in them."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create_scope(self, scope: str, initial_manage_principal: str | None = None) -> None:
        body = {"scope": scope}
        if initial_manage_principal is not None:
            body["initial_manage_principal"] = initial_manage_principal
        self._t.request("POST", BASE + "/scopes/create", json=body)

    def list_scopes(self) -> JsonObjects:
        """The scopes, as ``{name, backend_type}``."""
        scopes: JsonObjects = self._t.request("GET", BASE + "/scopes/list").get("scopes", [])
        return scopes

    def delete_scope(self, scope: str) -> None:
        """Delete the scope and every secret in it."""
        self._t.request("POST", BASE + "/scopes/delete", json={"scope": scope})

    def put(self, scope: str, key: str, value: str | bytes) -> None:
        """Store a text (``str``) or binary (``bytes``) value, overwriting any there."""
        body = {"scope": scope, "key": key}
        if isinstance(value, bytes):
            body["bytes_value"] = base64.b64encode(value).decode("ascii")
        else:
            body["string_value"] = value
        self._t.request("POST", BASE + "/put", json=body)

    def list(self, scope: str) -> JsonObjects:
        """The keys in ``scope``, as ``{key, last_updated_timestamp}``."""
        found: JsonObjects = self._t.request("GET", BASE + "/list", params={"scope": scope}).get(
            "secrets", []
        )
        return found

    def delete(self, scope: str, key: str) -> None:
        self._t.request("POST", BASE + "/delete", json={"scope": scope, "key": key})
