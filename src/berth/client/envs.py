"""The environment cache resource of the SDK: ``/api/2.0/berth/envs``."""

from __future__ import annotations

from typing import Any

from berth.client.transport import Transport

BASE = "/api/2.0/berth/envs"

Environments = list[dict[str, Any]]


class EnvsApi:
    """Model environments built by uv: list them, prune those nothing serves from."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list(self) -> Environments:
        found: Environments = self._t.request("GET", BASE).get("environments", [])
        return found

    def prune(self) -> Environments:
        removed: Environments = self._t.request("POST", BASE + "/prune").get("removed", [])
        return removed
