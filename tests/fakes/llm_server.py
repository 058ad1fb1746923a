"""A fake LLM provider on a real port, speaking the OpenAI and Anthropic wire formats.

It answers deterministically: the reply is the last user message with its words in reverse
order, and a token is a whitespace-separated word. It checks the API key and answers a wrong
one with the provider's own 401 body; it can fail the next requests (429/5xx, with
Retry-After) or hold them, and it records every request it receives.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JsonObject = dict[str, Any]
CREATED = 1_700_000_000
ANTHROPIC_FIELDS = frozenset(
    {"model", "max_tokens", "messages", "system", "temperature", "top_p", "top_k"}
    | {"stop_sequences", "stream", "metadata", "tools", "tool_choice", "thinking"}
    | {"service_tier"}
)
BODY = web.RequestKey("body", dict)
ANTHROPIC_ERRORS = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error"}


@dataclass(frozen=True)
class Recorded:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: JsonObject


@dataclass
class Failure:
    status: int
    retry_after: str | None


@dataclass(frozen=True)
class Reply:
    text: str
    finish: str  # "stop", "length" or "stop_sequence"
    stop_sequence: str | None = None

    @property
    def tokens(self) -> int:
        return words(self.text)


def words(text: str) -> int:
    return len(text.split())


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content or [] if part.get("type") == "text")


def reply_to(text: str, max_tokens: int | None, stop: list[str]) -> Reply:
    reply = " ".join(reversed(text.split()))
    for sequence in stop:
        if sequence in reply:
            return Reply(reply[: reply.index(sequence)], "stop_sequence", sequence)
    if max_tokens is not None and words(reply) > max_tokens:
        return Reply(" ".join(reply.split()[:max_tokens]), "length")
    return Reply(reply, "stop")


def pieces(text: str) -> list[str]:
    """The reply in several stream pieces, one word each, which join back to ``text``."""
    split = text.split(" ")
    return [word + ("" if i == len(split) - 1 else " ") for i, word in enumerate(split)]


def embedding(text: str, dimensions: int) -> list[float]:
    """A vector exactly representable in float32, so base64 round-trips it bit for bit."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(digest[i % len(digest)] - 128) / 128 for i in range(dimensions)]


def stop_list(stop: Any) -> list[str]:
    return [stop] if isinstance(stop, str) else list(stop or [])


def openai_error(status: int, message: str, kind: str, code: str | None) -> web.Response:
    error = {"message": message, "type": kind, "param": None, "code": code}
    return web.json_response({"error": error}, status=status)


def anthropic_error(status: int, message: str) -> web.Response:
    kind = ANTHROPIC_ERRORS.get(status, "api_error")
    error = {"type": kind, "message": message}
    return web.json_response({"type": "error", "error": error}, status=status)


def sse(data: str, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


@dataclass
class FakeLlmServer:
    """Start with ``start()``; ``url`` is its root (OpenAI base is ``url + "/v1"``)."""

    api_key: str = "sk-fake-0123456789abcdef"
    # Headers besides Authorization that may carry the key (Azure's api-key, custom ones).
    key_headers: tuple[str, ...] = ("api-key",)
    requests: list[Recorded] = field(default_factory=list)
    record: bool = True
    """Keep every request in ``requests`` (tests read them; a benchmark's millions would
    make the stand-in's own collector pauses part of the figures)."""
    url: str = ""
    _failures: list[Failure] = field(default_factory=list)
    _holds: list[float] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    def fail_next(self, count: int, status: int = 429, retry_after: str | None = None) -> None:
        self._failures.extend(Failure(status, retry_after) for _ in range(count))

    def hold_next(self, seconds: float) -> None:
        """Answer the next request only after ``seconds`` (to make clients time out)."""
        self._holds.append(seconds)

    def start(self) -> FakeLlmServer:
        """Listen on a free port, serving from a thread of its own (the loop never runs on
        the caller's thread, which may already run one: Playwright's, in the console tests)."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    async def _listen(self) -> None:
        self._runner = web.AppRunner(self._app(), handler_cancellation=True, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        assert self._loop is not None and self._runner is not None and self._thread
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._embeddings)
        app.router.add_post("/v1/messages", self._messages)
        return app

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if self.record:
            self.requests.append(Recorded(request.path, dict(request.query), headers, body))
        anthropic = request.path == "/v1/messages"
        if self._holds:
            await asyncio.sleep(self._holds.pop(0))
        if self._failures:
            return self._failure(self._failures.pop(0), anthropic)
        refused = self._refused(request, headers, anthropic)
        if refused is not None:
            return refused
        request[BODY] = body
        response: web.StreamResponse = await handler(request)
        return response

    def _failure(self, failure: Failure, anthropic: bool) -> web.Response:
        said = "Rate limit reached" if failure.status == 429 else "The server had an error"
        response = (
            anthropic_error(failure.status, said)
            if anthropic
            else openai_error(failure.status, said, "requests", None)
        )
        if failure.retry_after is not None:
            response.headers["retry-after"] = failure.retry_after
        return response

    def _refused(
        self, request: web.Request, headers: dict[str, str], anthropic: bool
    ) -> web.Response | None:
        given = headers.get("authorization", "").removeprefix("Bearer ")
        names = ("x-api-key",) if anthropic else self.key_headers
        keys = {given, *(headers.get(name, "") for name in names)}
        if self.api_key in keys:
            return None
        if anthropic:
            return anthropic_error(401, "invalid x-api-key")
        if request.path.startswith("/openai/") and "api-version" not in request.query:
            return openai_error(404, "Resource not found", "invalid_request_error", "404")
        shown = given or next(iter(keys - {""}), "")
        message = (
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
        return openai_error(401, message, "invalid_request_error", "invalid_api_key")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body: JsonObject = request[BODY]
        messages = body.get("messages") or []
        users = [m for m in messages if m.get("role") == "user"]
        prompt = sum(words(text_of(m.get("content"))) for m in messages)
        reply = reply_to(
            text_of(users[-1]["content"]) if users else "",
            body.get("max_completion_tokens") or body.get("max_tokens"),
            stop_list(body.get("stop")),
        )
        if body.get("stream"):
            return await self._openai_stream(request, "chat.completion.chunk", reply, prompt)
        n = int(body.get("n") or 1)
        choices = [self._chat_choice(i, reply) for i in range(n)]
        return web.json_response(self._openai(body, "chat.completion", choices, prompt, reply))

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body: JsonObject = request[BODY]
        prompts = stop_list(body.get("prompt"))
        replies = [
            reply_to(p, body.get("max_tokens"), stop_list(body.get("stop"))) for p in prompts
        ]
        prompt = sum(words(p) for p in prompts)
        if body.get("stream"):
            return await self._openai_stream(request, "text_completion", replies[0], prompt)
        choices = [
            {"index": i, "text": r.text, "logprobs": None, "finish_reason": _openai_finish(r)}
            for i, r in enumerate(replies)
        ]
        completion = sum(r.tokens for r in replies)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion}
        answer = self._openai(body, "text_completion", choices, prompt, replies[0])
        answer["usage"] = {**usage, "total_tokens": prompt + completion}
        return web.json_response(answer)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body: JsonObject = request[BODY]
        inputs = stop_list(body.get("input"))
        dimensions = int(body.get("dimensions") or 4)
        data = []
        for i, text in enumerate(inputs):
            vector: Any = embedding(text, dimensions)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vector})
        tokens = sum(words(text) for text in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response(
            {"object": "list", "model": body.get("model"), "data": data, "usage": usage}
        )

    def _chat_choice(self, index: int, reply: Reply) -> JsonObject:
        message = {"role": "assistant", "content": reply.text, "refusal": None}
        return {
            "index": index,
            "message": message,
            "logprobs": None,
            "finish_reason": _openai_finish(reply),
        }

    def _openai(
        self, body: JsonObject, kind: str, choices: list[JsonObject], prompt: int, reply: Reply
    ) -> JsonObject:
        completion = reply.tokens * len(choices)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion}
        return {
            "id": "chatcmpl-fake" if kind.startswith("chat") else "cmpl-fake",
            "object": kind,
            "created": CREATED,
            "model": body.get("model"),
            "system_fingerprint": None,
            "choices": choices,
            "usage": {**usage, "total_tokens": prompt + completion},
        }

    async def _openai_stream(
        self, request: web.Request, kind: str, reply: Reply, prompt: int
    ) -> web.StreamResponse:
        body: JsonObject = request[BODY]
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        chat = kind == "chat.completion.chunk"
        parts: list[tuple[JsonObject, str | None]] = [({"role": "assistant", "content": ""}, None)]
        parts += [({"content": piece}, None) for piece in pieces(reply.text)]
        parts.append(({}, _openai_finish(reply)))
        for delta, finish in parts if chat else parts[1:]:
            choice: JsonObject = {"index": 0, "finish_reason": finish, "logprobs": None}
            choice.update({"delta": delta} if chat else {"text": delta.get("content", "")})
            chunk = {"id": "chatcmpl-fake", "object": kind, "created": CREATED}
            chunk |= {"model": body.get("model"), "choices": [choice]}
            await response.write(sse(json.dumps(chunk | ({"usage": None} if with_usage else {}))))
        if with_usage:
            usage = {"prompt_tokens": prompt, "completion_tokens": reply.tokens}
            usage["total_tokens"] = prompt + reply.tokens
            envelope = {"id": "chatcmpl-fake", "object": kind, "created": CREATED}
            last = envelope | {"model": body.get("model"), "choices": [], "usage": usage}
            await response.write(sse(json.dumps(last)))
        await response.write(sse("[DONE]"))
        await response.write_eof()
        return response

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body: JsonObject = request[BODY]
        invalid = _anthropic_invalid(request, body)
        if invalid:
            return anthropic_error(400, invalid)
        messages = body["messages"]
        users = [m for m in messages if m["role"] == "user"]
        system = text_of(body.get("system"))
        prompt = words(system) + sum(words(text_of(m["content"])) for m in messages)
        reply = reply_to(
            text_of(users[-1]["content"]), body["max_tokens"], body.get("stop_sequences") or []
        )
        if body.get("stream"):
            return await self._anthropic_stream(request, reply, prompt)
        return web.json_response(_anthropic_message(body, reply, prompt))

    async def _anthropic_stream(
        self, request: web.Request, reply: Reply, prompt: int
    ) -> web.StreamResponse:
        body: JsonObject = request[BODY]
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        start = _anthropic_message(body, Reply("", "stop"), prompt)
        start |= {"content": [], "stop_reason": None}
        start["usage"]["output_tokens"] = 1
        events: list[tuple[str, JsonObject]] = [
            ("message_start", {"message": start}),
            ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            ("ping", {}),
        ]
        for piece in pieces(reply.text):
            delta = {"type": "text_delta", "text": piece}
            events.append(("content_block_delta", {"index": 0, "delta": delta}))
        stop = {"stop_reason": _anthropic_stop(reply), "stop_sequence": reply.stop_sequence}
        events += [
            ("content_block_stop", {"index": 0}),
            ("message_delta", {"delta": stop, "usage": {"output_tokens": reply.tokens}}),
            ("message_stop", {}),
        ]
        for name, data in events:
            await response.write(sse(json.dumps({"type": name, **data}), event=name))
        await response.write_eof()
        return response


def _openai_finish(reply: Reply) -> str:
    return "stop" if reply.finish == "stop_sequence" else reply.finish


def _anthropic_stop(reply: Reply) -> str:
    return {"stop": "end_turn", "length": "max_tokens"}.get(reply.finish, reply.finish)


def _anthropic_invalid(request: web.Request, body: JsonObject) -> str | None:
    if "anthropic-version" not in request.headers:
        return "anthropic-version: header is required"
    extra = sorted(set(body) - ANTHROPIC_FIELDS)
    if extra:
        return f"{extra[0]}: Extra inputs are not permitted"
    for required in ("model", "max_tokens", "messages"):
        if required not in body:
            return f"{required}: Field required"
    roles = {m.get("role") for m in body["messages"]}
    if not roles <= {"user", "assistant"} or not body["messages"]:
        return f"messages: roles must be user or assistant, not {sorted(map(str, roles))}"
    return None


def _anthropic_message(body: JsonObject, reply: Reply, prompt: int) -> JsonObject:
    content: list[JsonObject] = [{"type": "text", "text": reply.text}]
    stop_reason = _anthropic_stop(reply)
    choice = body.get("tool_choice") or {}
    if body.get("tools") and choice.get("type") in ("any", "tool"):
        name = choice.get("name") or body["tools"][0]["name"]
        content = [
            {"type": "tool_use", "id": "toolu_fake", "name": name, "input": {"text": reply.text}}
        ]
        stop_reason = "tool_use"
    usage = {"input_tokens": prompt, "output_tokens": reply.tokens}
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": usage | {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }
