"""AI gateway guardrails berth enforces: ``invalid_keywords`` and ``pii`` (``BLOCK`` or
``MASK``: e-mail addresses, phone numbers, card numbers), on requests (``input``) and on
answers (``output``).

Texts are those of the OpenAI and Databricks LLM bodies: ``messages[].content`` (a string or
text parts), ``prompt``, ``input``; in answers ``choices[].message.content`` and
``choices[].text``. A blocked request or answer is a 400 that says which guardrail acted; a
masked one goes on with ``[REDACTED]`` in place of what was found. An output guardrail needs
the whole answer before any of it goes out, so a request for a stream on an endpoint with
output guardrails is refused rather than sent unchecked. ``safety`` and ``valid_topics`` need
a classifier model berth does not have: they are refused when the config is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import Message, Send

from berth.core.errors import BadRequest
from berth.gateway import json_body

MASK = "[REDACTED]"
ENFORCED = ("invalid_keywords", "pii")

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"(?<![\w])(?:\+?\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?"
    r"\d{3,4}[ .-]\d{3,4}(?:[ .-]\d{2,4})?(?![\w])"
)
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


class GuardrailBlocked(BadRequest):
    """A guardrail refused the request or its answer."""


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def find_pii(text: str) -> list[tuple[int, int]]:
    """Spans of e-mail addresses, card numbers (Luhn-valid) and phone numbers in ``text``."""
    spans = [m.span() for m in _EMAIL.finditer(text)]
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            spans.append(match.span())
    for match in _PHONE.finditer(text):
        if not any(s <= match.start() < e for s, e in spans):
            spans.append(match.span())
    return sorted(spans)


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    out, at = [], 0
    for start, end in spans:
        if start < at:
            continue
        out += [text[at:start], MASK]
        at = end
    return "".join(out) + text[at:]


class Guard:
    """One direction's guardrails (``input`` or ``output``) of an endpoint."""

    def __init__(self, where: str, parameters: Mapping[str, Any]) -> None:
        self._where = where
        self._keywords = [k.lower() for k in parameters.get("invalid_keywords") or () if k]
        pii = parameters.get("pii") or {}
        self._pii = str(pii.get("behavior") or "NONE") if isinstance(pii, Mapping) else "NONE"

    @property
    def active(self) -> bool:
        return bool(self._keywords) or self._pii in ("BLOCK", "MASK")

    def text(self, value: str) -> str:
        lowered = value.lower()
        for keyword in self._keywords:
            if keyword in lowered:
                raise GuardrailBlocked(
                    f"The {self._where} was blocked by the endpoint's {self._where} guardrail: "
                    "it contains an invalid keyword."
                )
        if self._pii in ("BLOCK", "MASK"):
            spans = find_pii(value)
            if spans and self._pii == "BLOCK":
                raise GuardrailBlocked(
                    f"The {self._where} was blocked by the endpoint's {self._where} guardrail: "
                    "it contains personal information (PII)."
                )
            if spans:
                return _masked(value, spans)
        return value


def guard_request(body: dict[str, Any], guard: Guard) -> dict[str, Any]:
    """The request with its texts checked (and masked)."""
    checked = dict(body)
    if isinstance(body.get("messages"), list):
        checked["messages"] = [_message(m, guard.text) for m in body["messages"]]
    for key in ("prompt", "input"):
        if key in body:
            checked[key] = _texts(body[key], guard.text)
    return checked


def guard_answer(answer: dict[str, Any], guard: Guard) -> dict[str, Any]:
    """The answer with its texts checked (and masked)."""
    choices = answer.get("choices")
    if not isinstance(choices, list):
        return answer
    checked = []
    for choice in choices:
        if not isinstance(choice, dict):
            checked.append(choice)
            continue
        choice = dict(choice)
        if isinstance(choice.get("message"), dict):
            choice["message"] = _message(choice["message"], guard.text)
        if isinstance(choice.get("text"), str):
            choice["text"] = guard.text(choice["text"])
        checked.append(choice)
    return {**answer, "choices": checked}


def _message(message: Any, check: Callable[[str], str]) -> Any:
    if not isinstance(message, dict):
        return message
    return {**message, "content": _texts(message.get("content"), check)}


def _texts(value: Any, check: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return check(value)
    if isinstance(value, list):
        return [_texts(item, check) for item in value]
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return {**value, "text": check(value["text"])}
    return value


def apply(
    guardrails: Mapping[str, Any], body: bytes, request: dict[str, Any] | None, send: Send
) -> tuple[bytes, dict[str, Any] | None, Send]:
    """The request's body (and its parsed form) checked by the input guardrails, and the
    ``send`` that checks the answer by the output guardrails."""
    inbound = Guard("request", guardrails.get("input") or {})
    outbound = Guard("answer", guardrails.get("output") or {})
    if not inbound.active and not outbound.active:
        return body, request, send
    parsed = request
    if parsed is None:
        try:
            found = json_body.loads(body)
        except ValueError as exc:
            raise BadRequest(f"Malformed JSON in request body: {exc}") from exc
        parsed = found if isinstance(found, dict) else {}
    if inbound.active:
        parsed = guard_request(parsed, inbound)
        body = json.dumps(parsed).encode()
        request = parsed if request is not None else None
    if outbound.active:
        if parsed.get("stream") is True:
            raise BadRequest(
                "This endpoint checks answers with output guardrails, which need the whole "
                'answer before it is sent: ask without "stream": true.'
            )
        send = _checked_answers(send, outbound)
    return body, request, send


def _checked_answers(send: Send, guard: Guard) -> Send:
    """Holds the answer until it is whole, then sends it checked (masked) or blocked."""
    held: list[Message] = []
    chunks: list[bytes] = []

    async def checked(message: Message) -> None:
        if message["type"] == "http.response.start":
            held.append(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        start: Message = held[0]
        payload = b"".join(chunks)
        if start["status"] == 200:
            try:
                answer = json_body.loads(payload)
                if isinstance(answer, dict):
                    payload = json.dumps(guard_answer(answer, guard)).encode()
            except ValueError:
                pass
            except GuardrailBlocked as blocked:
                start, payload = _blocked(blocked)
        headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return checked


def _blocked(error: GuardrailBlocked) -> tuple[Message, bytes]:
    payload = json.dumps(error.to_json()).encode()
    start = {
        "type": "http.response.start",
        "status": error.http_status,
        "headers": [(b"content-type", b"application/json")],
    }
    return start, payload
