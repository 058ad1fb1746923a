"""How many tokens a request may use, reserved against token limits before it runs.

berth does not tokenize (the model or provider does): the prompt is estimated from its
UTF-8 length at three bytes a token, which is more tokens than English text (about four
bytes a token) or code turns into, and the completion at its ``max_tokens``. A request that
uses fewer tokens gives the difference back when it settles.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

BYTES_PER_TOKEN = 3
DEFAULT_MAX_TOKENS = 512
"""Reserved for the completion of a chat or completions request that sets no ``max_tokens``."""


def estimate_tokens(request: Mapping[str, Any] | None) -> int:
    """Prompt estimate plus ``max_tokens`` (times ``n``) for a chat, completions or
    embeddings body; 0 for bodies that are none of those (tabular model inputs)."""
    if request is None:
        return 0
    size = sum(len(text.encode()) for text in _texts(request))
    prompt = math.ceil(size / BYTES_PER_TOKEN)
    if "messages" not in request and "prompt" not in request:
        return prompt
    limit = request.get("max_tokens") or request.get("max_completion_tokens")
    completion = limit if isinstance(limit, int) and limit > 0 else DEFAULT_MAX_TOKENS
    choices = request.get("n")
    return prompt + completion * (choices if isinstance(choices, int) and choices > 0 else 1)


def _texts(request: Mapping[str, Any]) -> Iterator[str]:
    for message in request.get("messages") or []:
        if isinstance(message, dict):
            yield from _strings(message.get("content"))
    yield from _strings(request.get("prompt"))
    yield from _strings(request.get("input"))
    yield from _strings(request.get("system"))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield from _strings(item.get("text"))
            else:
                yield from _strings(item)
