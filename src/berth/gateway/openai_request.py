"""The types of an OpenAI-shaped request, checked before a provider sees it: a wrong type is
the caller's 400 here, not a provider's 500 (or a request berth cannot relay) later."""

from __future__ import annotations

import math
from typing import Any, NoReturn

from berth.core.errors import InvalidParameter

_INPUT = {"chat": "messages", "completions": "prompt", "embeddings": "input"}
_INTEGERS = ("max_tokens", "max_completion_tokens", "n", "top_k", "seed", "dimensions")
_NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


def check_request(operation: str, request: dict[str, Any]) -> None:
    """Raise ``InvalidParameter`` naming the first field of the wrong type."""
    field = _INPUT[operation]
    value = request.get(field)
    if operation == "chat":
        _check_messages(value)
    elif not (isinstance(value, str) or (isinstance(value, list) and value)):
        _refuse(field, "a string or a non-empty list")
    for name in _INTEGERS:
        found = request.get(name)
        if found is not None and (
            not isinstance(found, int) or isinstance(found, bool) or found < 0
        ):
            _refuse(name, "a non-negative integer")
    for name in _NUMBERS:
        found = request.get(name)
        if found is not None and (
            not isinstance(found, int | float)
            or isinstance(found, bool)
            or not math.isfinite(found)
        ):
            _refuse(name, "a finite number")
    stream = request.get("stream")
    if stream is not None and not isinstance(stream, bool):
        _refuse("stream", "true or false")
    stop = request.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        _refuse("stop", "a string or a list of strings")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        _refuse("messages", "a non-empty list of messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            _refuse(f"messages[{i}]", 'an object with a string "role"')
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            _refuse(f"messages[{i}].content", "a string or a list of content parts")


def _refuse(field: str, expected: str) -> NoReturn:
    raise InvalidParameter(f"{field} must be {expected}.")
