"""Small rules of berth's one schema that every provider's answers are brought to."""

from __future__ import annotations

import base64
import struct
from contextlib import aclosing
from typing import Any

from berth.providers.base import JsonObject, Stream

_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def usage_of(usage: Any) -> JsonObject:
    """``usage`` with its three counts always present.

    A count the provider did not report is 0, never an estimate: berth does not tokenize
    for providers, and a made-up count would be billed or rate-limited as if it were real.
    """
    given = usage if isinstance(usage, dict) else {}
    filled = dict(given)
    for key in _USAGE_KEYS:
        filled[key] = int(given.get(key) or 0)
    if not given.get("total_tokens"):
        filled["total_tokens"] = filled["prompt_tokens"] + filled["completion_tokens"]
    return filled


def with_usage(response: JsonObject) -> JsonObject:
    return {**response, "usage": usage_of(response.get("usage"))}


def request_body(request: JsonObject, model: str) -> JsonObject:
    """The upstream body: the provider's model name, ``extra_params`` merged in, no stream."""
    body = {k: v for k, v in request.items() if k not in ("extra_params", "stream_options")}
    body.update(request.get("extra_params") or {})
    body["model"] = model
    body.pop("stream", None)
    return body


def wants_usage_chunk(request: JsonObject) -> bool:
    options = request.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


async def settle_usage(chunks: Stream, usage_chunk: bool) -> Stream:
    """The chunks with usage reported exactly once.

    With ``usage_chunk`` (the caller's ``stream_options.include_usage``) usage comes as
    OpenAI sends it, in a last chunk with no choices; otherwise it rides on the last chunk,
    as Databricks does. Zeros when the provider sent none.
    """
    held: JsonObject | None = None
    usage: Any = None
    async with aclosing(chunks):
        async for chunk in chunks:
            if not chunk.get("choices") and chunk.get("usage"):
                usage = chunk["usage"]
                continue
            if held is not None:
                yield held
            held = chunk
    if held is None:
        return
    if not usage_chunk:
        yield {**held, "usage": usage_of(usage)}
        return
    yield held
    yield {**_envelope(held), "choices": [], "usage": usage_of(usage)}


def _envelope(chunk: JsonObject) -> JsonObject:
    return {k: chunk[k] for k in ("id", "object", "created", "model") if k in chunk}


def encode_embedding(vector: list[float]) -> str:
    """Little-endian float32, base64: what the OpenAI SDK decodes for ``base64``."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def decode_embedding(encoded: str) -> list[float]:
    raw = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def embeddings_response(response: JsonObject, encoding_format: str) -> JsonObject:
    """An embeddings answer in the caller's encoding, with usage filled."""
    data = []
    for item in response.get("data") or []:
        vector = item.get("embedding")
        floats = decode_embedding(vector) if isinstance(vector, str) else vector
        encoded = encode_embedding(floats) if encoding_format == "base64" else floats
        data.append({**item, "embedding": encoded})
    usage = usage_of(response.get("usage"))
    usage.pop("completion_tokens")
    return {**response, "object": "list", "data": data, "usage": usage}
