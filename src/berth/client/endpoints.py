"""The endpoints resource of the SDK: ``/api/2.0/serving-endpoints``, in Databricks' JSON shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from berth.client.transport import ApiError, Transport

JsonObject = dict[str, Any]
JsonObjects = list[JsonObject]

BASE = "/api/2.0/serving-endpoints"


class EndpointsApi:
    """Create, read, reconfigure, tag and delete serving endpoints."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, spec: JsonObject) -> JsonObject:
        """Create from a CreateServingEndpoint payload ``{name, config, tags?, ...}``."""
        return self._object("POST", BASE, json=spec)

    def get(self, name: str) -> JsonObject:
        return self._object("GET", _path(name))

    def list(self) -> JsonObjects:
        items: JsonObjects = self._object("GET", BASE).get("endpoints", [])
        return items

    def update_config(self, name: str, config: JsonObject) -> JsonObject:
        """Start a config update from an EndpointCoreConfigInput; answers the endpoint."""
        return self._object("PUT", _path(name, "config"), json=config)

    def delete(self, name: str) -> None:
        self._t.request("DELETE", _path(name))

    def patch_tags(
        self, name: str, add: dict[str, str] | None = None, delete: Sequence[str] | None = None
    ) -> JsonObjects:
        """Add (or overwrite) and remove tags; answers the endpoint's resulting tags."""
        body: JsonObject = {}
        if add:
            body["add_tags"] = [{"key": key, "value": value} for key, value in add.items()]
        if delete:
            body["delete_tags"] = list(delete)
        tags: JsonObjects = self._object("PATCH", _path(name, "tags"), json=body).get("tags", [])
        return tags

    def events(self, name: str) -> JsonObjects:
        """The endpoint's events, as ``{timestamp, type, message, config_version}``."""
        events: JsonObjects = self._object("GET", _path(name, "events")).get("events", [])
        return events

    def _object(self, method: str, path: str, **kwargs: Any) -> JsonObject:
        body = self._t.request(method, path, **kwargs)
        if not isinstance(body, dict):
            raise ApiError(
                "INTERNAL_ERROR",
                f"{method} {path} answered {type(body).__name__}, expected a JSON object",
                500,
            )
        return body


def _path(name: str, *rest: str) -> str:
    return "/".join([BASE, quote(name, safe=""), *rest])
