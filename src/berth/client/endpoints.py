"""The endpoints resource of the SDK: ``/api/2.0/serving-endpoints``, in Databricks' JSON shapes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
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

    def list(self, states: Sequence[str] = (), tags: Sequence[str] = ()) -> JsonObjects:
        """The endpoints the token may view: those in any of ``states`` (``READY``,
        ``IN_PROGRESS``, ...) that carry every one of ``tags`` (``key`` or ``key=value``)."""
        params = [("state", state) for state in states] + [("tag", tag) for tag in tags]
        items: JsonObjects = self._object("GET", BASE, params=params).get("endpoints", [])
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

    def cancel_update(self, name: str) -> JsonObject:
        """Abandon the config update in progress; the current config keeps serving."""
        return self._object("POST", _path(name, "config", "cancel"))

    def logs(self, name: str, served_entity: str) -> str:
        """The tail of what the served entity's replicas printed."""
        found = self._object("GET", _path(name, "served-models", quote(served_entity), "logs"))
        return str(found.get("logs", ""))

    def metrics_history(self, name: str, minutes: int = 60) -> JsonObject:
        """The last ``minutes`` minutes (at most 1440), one point a minute per served entity
        and in total: ``{step_s, now_ms, minutes, last_minute_s, series: {entity: SERIES},
        total: SERIES}``, SERIES holding lists of ``requests``, ``errors``,
        ``requests_per_s``, ``errors_per_s``, ``server_errors_per_s``, ``p50_ms``,
        ``p99_ms``, ``input_tokens_per_s``, ``output_tokens_per_s``, ``replicas_current``
        and ``replicas_desired`` (berth's extension; see the route's documentation)."""
        return self._object("GET", _path(name, "metrics-history"), params={"minutes": minutes})

    def query(self, name: str, body: JsonObject) -> JsonObject:
        """Score ``body`` (any MLflow scoring format, or an OpenAI-style body)."""
        return self._object("POST", _invocations(name), json=body)

    def query_stream(self, name: str, body: JsonObject) -> Iterator[JsonObject]:
        """Score ``body`` with ``"stream": true``: each event's JSON as it arrives, until
        ``data: [DONE]``. An error event (a stream that failed after it began) raises
        ``ApiError`` with the answer's status, 200."""
        streamed = {**body, "stream": True}
        with self._t.stream_lines("POST", _invocations(name), json=streamed) as lines:
            for line in lines:
                field, _, value = line.partition(":")
                if field != "data":
                    continue  # the blank line between events
                if value.strip() == "[DONE]":
                    return
                event = json.loads(value)
                error = event.get("error") if isinstance(event, dict) else None
                if isinstance(error, dict):
                    code = error.get("error_code") or error.get("code") or "INTERNAL_ERROR"
                    raise ApiError(str(code), str(error.get("message", "")), 200)
                yield event

    def wait(
        self,
        name: str,
        timeout_s: float = 1200.0,
        on_poll: Callable[[JsonObject], None] | None = None,
        every_s: float = 0.5,
    ) -> JsonObject:
        """Poll until no update is in progress and, unless it failed, the endpoint is READY.

        Returns the last endpoint seen; the caller reads ``state`` to tell success from
        ``UPDATE_FAILED``/``UPDATE_CANCELED``. Raises ``TimeoutError`` past ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            endpoint = self.get(name)
            if on_poll is not None:
                on_poll(endpoint)
            if settled(endpoint):
                return endpoint
            if time.monotonic() > deadline:
                raise TimeoutError(f"endpoint {name} did not settle within {timeout_s:.0f}s")
            time.sleep(every_s)

    def _object(self, method: str, path: str, **kwargs: Any) -> JsonObject:
        body = self._t.request(method, path, **kwargs)
        if not isinstance(body, dict):
            raise ApiError(
                "INTERNAL_ERROR",
                f"{method} {path} answered {type(body).__name__}, expected a JSON object",
                500,
            )
        return body


def settled(endpoint: JsonObject) -> bool:
    """No update in progress and either READY or the last update did not succeed."""
    state = endpoint.get("state", {})
    if state.get("config_update") == "IN_PROGRESS":
        return False
    return bool(state.get("ready") == "READY" or state.get("config_update") != "NOT_UPDATING")


def _invocations(name: str) -> str:
    return "/serving-endpoints/" + quote(name, safe="") + "/invocations"


def _path(name: str, *rest: str) -> str:
    return "/".join([BASE, quote(name, safe=""), *rest])
