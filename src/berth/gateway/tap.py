"""What goes back to the client, as the gateway sends it: the request id on every answer, and
for a captured request, its status and (up to a cap) its body, streams included."""

from __future__ import annotations

from starlette.types import Message, Send


class ResponseTap:
    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self._id = request_id.encode("latin-1")
        self.keep_bytes = 0
        """How much of the body to keep; 0 keeps nothing (the request is not captured)."""
        self.status = 0
        self._parts: list[bytes] = []
        self._kept = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message = {**message, "headers": [*message["headers"], (b"x-request-id", self._id)]}
        elif self._kept < self.keep_bytes:
            chunk = message.get("body", b"")[: self.keep_bytes - self._kept]
            if chunk:
                self._parts.append(chunk)
                self._kept += len(chunk)
        await self._send(message)

    @property
    def body(self) -> bytes:
        return b"".join(self._parts)
