"""Reads request bodies sent without a JSON content type as JSON.

``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``, and Databricks' own examples
omit the header; the API takes only JSON (and multipart uploads), so such bodies are JSON.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

_JSON = (b"content-type", b"application/json")


class DefaultJsonContentType:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            given = dict(scope["headers"]).get(b"content-type", b"")
            if not given or given.startswith(b"application/x-www-form-urlencoded"):
                scope = {**scope, "headers": [*headers, _JSON]}
        await self._app(scope, receive, send)
