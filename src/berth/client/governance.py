"""Usage summaries and the audit log: ``/api/2.0/berth/usage`` and ``/api/2.0/berth/audit``."""

from __future__ import annotations

from typing import Any

from berth.client.transport import Transport

Rows = list[dict[str, Any]]


class GovernanceApi:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def usage(
        self,
        by: tuple[str, ...] = ("endpoint", "principal", "day"),
        since_ms: int | None = None,
        until_ms: int | None = None,
        endpoint: str | None = None,
    ) -> Rows:
        """Requests, errors, tokens and mean latency, summed by the ``by`` columns."""
        params: dict[str, Any] = {"by": ",".join(by)}
        for key, value in (("since", since_ms), ("until", until_ms), ("endpoint", endpoint)):
            if value is not None:
                params[key] = value
        found: Rows = self._t.request("GET", "/api/2.0/berth/usage", params=params)["usage"]
        return found

    def audit(
        self,
        since_ms: int = 0,
        object_type: str | None = None,
        object_id: str | None = None,
        actor: str | None = None,
        limit: int = 100,
    ) -> Rows:
        """Control-plane changes, newest first (admins only)."""
        params: dict[str, Any] = {"since": since_ms, "limit": limit}
        for key, value in (
            ("object_type", object_type),
            ("object_id", object_id),
            ("actor", actor),
        ):
            if value is not None:
                params[key] = value
        found: Rows = self._t.request("GET", "/api/2.0/berth/audit", params=params)["entries"]
        return found

    def payloads(
        self,
        endpoint: str,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 100,
    ) -> Rows:
        """Captured requests and responses of ``endpoint`` (its inference table), newest first."""
        params: dict[str, Any] = {"limit": limit}
        for key, value in (("since", since_ms), ("until", until_ms)):
            if value is not None:
                params[key] = value
        path = f"/api/2.0/serving-endpoints/{endpoint}/payloads"
        found: Rows = self._t.request("GET", path, params=params)["payloads"]
        return found
