"""OpenAI chat and completions bodies to Anthropic Messages and back, as pure functions.

Mapping: system and developer messages join into ``system``; ``max_tokens`` (or
``max_completion_tokens``) defaults to ``DEFAULT_MAX_TOKENS`` as Anthropic requires one;
``stop`` becomes ``stop_sequences``; tools, tool calls and tool results become ``tool_use``
and ``tool_result`` blocks; ``user`` becomes ``metadata.user_id``. OpenAI-only fields
(penalties, ``logit_bias``, ``seed``, ``response_format``, ...) are dropped, since Anthropic
refuses unknown fields; ``extra_params`` pass through unchanged. ``temperature`` is passed as
given: Anthropic's range is 0-1 and it answers a clear 400 above that.
"""

from __future__ import annotations

import json
from typing import Any

from berth.core.errors import InvalidParameter
from berth.providers.base import JsonObject

DEFAULT_MAX_TOKENS = 1024
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_PASSED_THROUGH = ("temperature", "top_p", "top_k", "metadata", "thinking", "service_tier")
_TOOL_CHOICES = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}


def finish_reason(stop_reason: str | None) -> str | None:
    return None if stop_reason is None else FINISH_REASONS.get(stop_reason, "stop")


def openai_usage(usage: Any) -> JsonObject:
    """Anthropic's counts as OpenAI's; cached input counts as prompt tokens, as in OpenAI."""
    given = usage if isinstance(usage, dict) else {}
    cached = int(given.get("cache_read_input_tokens") or 0)
    prompt = (
        int(given.get("input_tokens") or 0)
        + int(given.get("cache_creation_input_tokens") or 0)
        + cached
    )
    completion = int(given.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def messages_request(request: JsonObject, model: str) -> JsonObject:
    """The Anthropic Messages body for an OpenAI chat request (without ``stream``)."""
    if request.get("n") not in (None, 1):
        raise InvalidParameter("Anthropic answers one choice per request: send n=1 or omit it.")
    system, turns = _turns(request.get("messages") or [])
    body: JsonObject = {"model": model, "max_tokens": _max_tokens(request), "messages": turns}
    if system:
        body["system"] = system
    body.update(_options(request))
    body.update(request.get("extra_params") or {})
    return body


def prompt_request(request: JsonObject, model: str) -> JsonObject:
    """The Anthropic Messages body for an OpenAI completions request: the prompt as one turn."""
    prompt = request.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise InvalidParameter("Anthropic completions take one prompt string per request.")
    chat = {k: v for k, v in request.items() if k not in ("prompt", "tools", "tool_choice")}
    return messages_request({**chat, "messages": [{"role": "user", "content": prompt}]}, model)


def chat_completion(message: JsonObject, created: int) -> JsonObject:
    """The OpenAI ``chat.completion`` for an Anthropic ``message``."""
    blocks = message.get("content") or []
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    calls = [_tool_call(b) for b in blocks if b.get("type") == "tool_use"]
    reply: JsonObject = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        reply["tool_calls"] = calls
    choice = {"index": 0, "message": reply, "logprobs": None}
    return _completion(message, created, "chat.completion", choice)


def text_completion(message: JsonObject, created: int) -> JsonObject:
    """The OpenAI ``text_completion`` for an Anthropic ``message``."""
    blocks = message.get("content") or []
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    choice = {"index": 0, "text": text, "logprobs": None}
    return _completion(message, created, "text_completion", choice)


def _completion(message: JsonObject, created: int, kind: str, choice: JsonObject) -> JsonObject:
    choice["finish_reason"] = finish_reason(message.get("stop_reason"))
    return {
        "id": message.get("id"),
        "object": kind,
        "created": created,
        "model": message.get("model"),
        "choices": [choice],
        "usage": openai_usage(message.get("usage")),
    }


def _tool_call(block: JsonObject) -> JsonObject:
    arguments = json.dumps(block.get("input") or {})
    return {
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": arguments},
    }


def _max_tokens(request: JsonObject) -> int:
    given = request.get("max_completion_tokens") or request.get("max_tokens")
    return int(given) if given else DEFAULT_MAX_TOKENS


def _options(request: JsonObject) -> JsonObject:
    options = {key: request[key] for key in _PASSED_THROUGH if key in request}
    stop = request.get("stop")
    if stop:
        options["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if request.get("user"):
        options["metadata"] = {**options.get("metadata", {}), "user_id": request["user"]}
    if request.get("tools"):
        options["tools"] = [_tool(tool) for tool in request["tools"]]
    if request.get("tool_choice"):
        options["tool_choice"] = _tool_choice(request["tool_choice"])
    return options


def _tool(tool: JsonObject) -> JsonObject:
    function = tool.get("function") or {}
    described = {"description": function["description"]} if "description" in function else {}
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    return {"name": function.get("name"), **described, "input_schema": schema}


def _tool_choice(choice: Any) -> JsonObject:
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return _TOOL_CHOICES[choice]
    if isinstance(choice, dict) and "function" in choice:
        return {"type": "tool", "name": choice["function"]["name"]}
    raise InvalidParameter(f"tool_choice {choice!r} has no Anthropic equivalent.")


def _turns(messages: list[JsonObject]) -> tuple[str, list[JsonObject]]:
    """The joined system text, and user/assistant turns with consecutive same roles merged."""
    system: list[str] = []
    turns: list[JsonObject] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text(message.get("content")))
            continue
        anthropic_role, blocks = _turn(message)
        if turns and turns[-1]["role"] == anthropic_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": anthropic_role, "content": blocks})
    return "\n\n".join(part for part in system if part), turns


def _turn(message: JsonObject) -> tuple[str, list[JsonObject]]:
    role = message.get("role")
    if role == "tool":
        result = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
        return "user", [{**result, "content": _text(message.get("content"))}]
    if role == "assistant":
        calls = [_tool_use(call) for call in message.get("tool_calls") or []]
        return "assistant", _blocks(message.get("content")) + calls
    if role == "user":
        return "user", _blocks(message.get("content"))
    raise InvalidParameter(f"Message role {role!r} has no Anthropic equivalent.")


def _tool_use(call: JsonObject) -> JsonObject:
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except ValueError as exc:
        raise InvalidParameter(
            f"Tool call {call.get('id')!r} has arguments that are not JSON."
        ) from exc
    return {
        "type": "tool_use",
        "id": call.get("id"),
        "name": function.get("name"),
        "input": arguments,
    }


def _blocks(content: Any) -> list[JsonObject]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [_block(part) for part in content]


def _block(part: JsonObject) -> JsonObject:
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": part.get("text", "")}
    if kind == "image_url":
        return {"type": "image", "source": _image_source(part["image_url"]["url"])}
    raise InvalidParameter(f"Message part type {kind!r} has no Anthropic equivalent.")


def _image_source(url: str) -> JsonObject:
    if not url.startswith("data:"):
        return {"type": "url", "url": url}
    header, _, data = url.partition(",")
    media_type = header.removeprefix("data:").split(";")[0]
    return {"type": "base64", "media_type": media_type, "data": data}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if part.get("type") == "text")
