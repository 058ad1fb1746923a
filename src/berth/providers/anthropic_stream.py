"""Anthropic's named stream events as OpenAI chunks: one translator per stream.

``message_start`` opens the reply, ``content_block_*`` events carry text and tool-call
pieces, ``message_delta`` brings the stop reason and output tokens, and ``message_stop``
closes with a finishing chunk followed by a usage-only chunk (``choices: []``), which
``settle_usage`` then places where the caller wants it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from berth.providers.anthropic_format import finish_reason, openai_usage
from berth.providers.base import JsonObject

Kind = Literal["chat", "text"]


class StreamTranslator:
    """Feeds on ``(event name, data)`` and returns the OpenAI chunks each event makes."""

    def __init__(self, kind: Kind, created: int) -> None:
        self._kind = kind
        self._created = created
        self._id: str | None = None
        self._model: str | None = None
        self._usage: JsonObject = {}
        self._stop_reason: str | None = None
        self._tool_indexes: dict[int, int] = {}
        self._handlers: dict[str, Callable[[JsonObject], list[JsonObject]]] = {
            "message_start": self._on_message_start,
            "content_block_start": self._on_content_block_start,
            "content_block_delta": self._on_content_block_delta,
            "message_delta": self._on_message_delta,
            "message_stop": self._on_message_stop,
        }

    def feed(self, event: str, data: JsonObject) -> list[JsonObject]:
        """Chunks for one event; ``ping``, ``content_block_stop`` and unknown events make none."""
        handler = self._handlers.get(event)
        return [] if handler is None else handler(data)

    def _on_message_start(self, data: JsonObject) -> list[JsonObject]:
        message = data.get("message") or {}
        self._id, self._model = message.get("id"), message.get("model")
        self._usage.update(message.get("usage") or {})
        if self._kind == "text":
            return []
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_content_block_start(self, data: JsonObject) -> list[JsonObject]:
        block = data.get("content_block") or {}
        if block.get("type") == "tool_use" and self._kind == "chat":
            tool = len(self._tool_indexes)
            self._tool_indexes[int(data.get("index", 0))] = tool
            call = {"index": tool, "id": block.get("id"), "type": "function"}
            function = {"name": block.get("name"), "arguments": ""}
            return [self._chunk({"tool_calls": [{**call, "function": function}]})]
        if block.get("type") == "text" and block.get("text"):
            return [self._text(block["text"])]
        return []

    def _on_content_block_delta(self, data: JsonObject) -> list[JsonObject]:
        delta = data.get("delta") or {}
        if delta.get("type") == "text_delta":
            return [self._text(delta.get("text", ""))]
        tool = self._tool_indexes.get(int(data.get("index", 0)))
        if delta.get("type") == "input_json_delta" and tool is not None:
            piece = {"index": tool, "function": {"arguments": delta.get("partial_json", "")}}
            return [self._chunk({"tool_calls": [piece]})]
        return []

    def _on_message_delta(self, data: JsonObject) -> list[JsonObject]:
        self._stop_reason = (data.get("delta") or {}).get("stop_reason") or self._stop_reason
        self._usage.update(data.get("usage") or {})
        return []

    def _on_message_stop(self, data: JsonObject) -> list[JsonObject]:
        last = self._chunk({}, finish_reason(self._stop_reason) or "stop")
        usage = {**self._envelope(), "choices": [], "usage": openai_usage(self._usage)}
        return [last, usage]

    def _text(self, text: str) -> JsonObject:
        return self._chunk({"content": text}) if self._kind == "chat" else self._piece(text)

    def _chunk(self, delta: JsonObject, finish: str | None = None) -> JsonObject:
        if self._kind == "text":
            return self._piece("", finish)
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {**self._envelope(), "choices": [choice]}

    def _piece(self, text: str, finish: str | None = None) -> JsonObject:
        choice = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
        return {**self._envelope(), "choices": [choice]}

    def _envelope(self) -> JsonObject:
        kind = "chat.completion.chunk" if self._kind == "chat" else "text_completion"
        return {"id": self._id, "object": kind, "created": self._created, "model": self._model}
