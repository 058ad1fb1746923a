"""One query as the gateway walks it: ``authenticate → route → limit → serve → record``.

Each stage reads what the earlier ones found on the `Exchange` and adds its own, so no stage
takes more than the exchange, and the body is parsed as JSON once, by whichever stage first
needs it (most invocations bodies are copied to a replica unparsed).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from berth.core.dataplane import EndpointRoute
from berth.core.errors import BadRequest
from berth.core.principal import Principal
from berth.gateway import json_body, stages
from berth.gateway.tap import ResponseTap

_UNPARSED: Any = object()


@dataclass(slots=True)
class Served:
    """What answering one request came to: who answered, the status, the tokens it used and,
    for an answer with generated text, when its tokens came (`stream_watch`)."""

    entity: str = ""
    status: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    ttft_ms: float | None = None
    """From arrival to the first generated token sent on (a whole answer: to the answer)."""
    itl_ms: float | None = None
    """Mean gap between a stream's tokens after the first; None for a whole answer."""

    def count(self, usage: Any) -> None:
        """Take the token counts of an OpenAI ``usage`` object, when there is one."""
        if isinstance(usage, dict):
            self.input_tokens = _count(usage.get("prompt_tokens"))
            self.output_tokens = _count(usage.get("completion_tokens"))

    def count_json(self, payload: bytes) -> None:
        """The same from a JSON answer; bodies that mention no usage are not parsed."""
        if b'"usage"' in payload:
            with contextlib.suppress(ValueError):
                parsed = json_body.loads(payload)
                if isinstance(parsed, dict):
                    self.count(parsed.get("usage"))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


class Exchange:
    """The request, what the stages found out about it, and what answering it came to."""

    __slots__ = (
        "scope",
        "receive",
        "tap",
        "send",
        "request_id",
        "started",
        "arrived_ms",
        "timings",
        "principal",
        "route",
        "operation",
        "invoke",
        "body",
        "_json",
        "served",
        "error",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.started = time.perf_counter()
        self.arrived_ms = time.time_ns() // 1_000_000
        self.request_id = header(scope, b"x-request-id") or uuid.uuid4().hex
        self.timings = stages.begin(self.request_id)
        self.tap = ResponseTap(send, self.request_id)
        self.send: Send = self.tap
        """Where the answer goes: the tap, or a guard wrapped around it."""
        self.principal: Principal | None = None
        self.route: EndpointRoute | None = None
        self.operation: str | None = None
        """``chat``, ``completions`` or ``embeddings`` on an OpenAI route; None on invocations."""
        self.invoke: str | None = None
        """On ``/serving-endpoints/{name}/invoke/{path}``: ``/{path}`` and its query string,
        where a custom container's server is asked (Vertex's raw invoke)."""
        self.body = b""
        self._json: Any = _UNPARSED
        self.served = Served()
        self.error: str | None = None
        """What went wrong, as the capture records it."""

    @property
    def path(self) -> str:
        return str(self.scope["path"])

    async def read_body(self, max_bytes: int) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise BadRequest(f"Request body is over the {max_bytes} byte limit.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                self.body = b"".join(chunks)
                return

    def replace_body(self, body: bytes, parsed: dict[str, Any] | None) -> None:
        """A stage rewrote the body (guardrails mask it); ``parsed`` is its JSON when known."""
        self.body = body
        self._json = _UNPARSED if parsed is None else parsed

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; a 400 that says why when it is not one."""
        parsed = self._parse()
        if isinstance(parsed, ValueError):
            raise BadRequest(f"Malformed JSON in request body: {parsed}")
        if not isinstance(parsed, dict):
            raise BadRequest("The request body must be a JSON object.")
        return parsed

    def json_or_none(self) -> dict[str, Any] | None:
        """The body as a JSON object when it is one, else None (for estimates and ids)."""
        parsed = self._parse()
        return parsed if isinstance(parsed, dict) else None

    def parsed(self) -> dict[str, Any] | None:
        """The body's JSON object if some stage already parsed it; never parses."""
        return self._json if isinstance(self._json, dict) else None

    def _parse(self) -> Any:
        if self._json is _UNPARSED:
            try:
                self._json = json_body.loads(self.body)
            except ValueError as exc:
                self._json = exc
        return self._json

    def client_request_id(self) -> str | None:
        """The caller's own id for the request: a ``client_request_id`` in the JSON body."""
        request = self.parsed()
        if request is None and b'"client_request_id"' in self.body:
            request = self.json_or_none()
        found = (request or {}).get("client_request_id")
        return str(found) if found is not None else None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
