"""Caps on control-plane request bodies: 413 in the Databricks shape, the cap named.

Checked on ``Content-Length`` before anything is read, and again while the body streams in
(a chunked body has no length). Artifact uploads (multipart) have their own, larger cap.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyCap:
    def __init__(self, app: ASGIApp, max_bytes: int, max_upload_bytes: int) -> None:
        self._app = app
        self._max = max_bytes
        self._max_upload = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        upload = headers.get(b"content-type", b"").startswith(b"multipart/form-data")
        cap = self._max_upload if upload else self._max
        setting = "BERTH_REGISTRY__MAX_UPLOAD_BYTES" if upload else "BERTH_SERVER__MAX_BODY_BYTES"
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > cap:
            await _refuse(send, int(declared), cap, setting)
            return
        seen = 0
        over = False
        refused = False

        async def counted() -> Message:
            """Past the cap the body ends there; whatever the app answers, 413 goes out."""
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > cap:
                over = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def answered(message: Message) -> None:
            nonlocal refused
            if not over:
                await send(message)
            elif not refused:
                refused = True
                await _refuse(send, seen, cap, setting)

        await self._app(scope, counted, answered)


async def _refuse(send: Send, size: int, cap: int, setting: str) -> None:
    payload = json.dumps(
        {
            "error_code": "BAD_REQUEST",
            "message": f"The request body is {size} bytes or more, over the cap of {cap} "
            f"bytes ({setting}).",
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
