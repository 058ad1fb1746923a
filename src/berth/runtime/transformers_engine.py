"""An open LLM's replica on the GPU path when vLLM is not installed: transformers' continuous
batching (its ``ContinuousBatchingManager``) behind the OpenAI routes, on the replica's Unix
socket.

The manager decodes every request it holds in one batch per step and lets requests join and
leave between steps; this module only turns OpenAI bodies into token ids and the tokens it
streams back into OpenAI answers. Decoding is greedy: transformers applies sampling
parameters per request only with per-request logits processors, which this engine leaves
off (vLLM, the engine of choice where it is installed, applies them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.runtime.http import Request, Response, start_unix_server

log = logging.getLogger("berth.runtime.transformers_engine")

DEFAULT_MAX_TOKENS = 1024
"""Tokens generated when a request sets no ``max_tokens``."""


class EngineFailed(RuntimeError):
    """The model could not load or generate its first token."""


@dataclass(frozen=True)
class Step:
    """What a request has generated so far."""

    text: str
    tokens: int
    finish_reason: str | None
    """``stop`` (an end-of-sequence token), ``length`` (``max_tokens``), or None (going)."""


class Generator:
    """The model, its tokenizer and the continuous-batching manager that decodes for all
    requests at once (on the GPU when there is one)."""

    def __init__(self, artifact: Path, slots: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
        from transformers.generation import ContinuousBatchingConfig

        self.name = artifact.name
        self.tokenizer = AutoTokenizer.from_pretrained(artifact)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(artifact, dtype="auto", device_map=device)
        self._eos = self.tokenizer.eos_token_id
        self._manager = self.model.init_continuous_batching(
            generation_config=GenerationConfig(
                max_new_tokens=DEFAULT_MAX_TOKENS, eos_token_id=self._eos, do_sample=False
            ),
            continuous_batching_config=ContinuousBatchingConfig(max_requests_per_batch=slots),
        )
        self._manager.start()
        self._count = threading.Lock()
        self.in_flight = 0

    def chat_ids(self, messages: list[dict[str, Any]]) -> list[int]:
        encoded = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(encoded["input_ids"])

    def prompt_ids(self, prompt: str) -> list[int]:
        return list(self.tokenizer.encode(prompt))

    def generate(self, ids: list[int], max_tokens: int) -> Iterator[Step]:
        """The request's text after each step, until it finishes (blocks: run it in a
        thread)."""
        from transformers.generation.continuous_batching import RequestStatus

        request_id = self._manager.add_request(
            input_ids=ids, max_new_tokens=max_tokens, streaming=True
        )
        if request_id is None:
            raise EngineFailed("the engine is stopping and takes no new request")
        with self._count:
            self.in_flight += 1
        try:
            for output in self._manager.request_id_iter(request_id):
                tokens = list(output.generated_tokens)
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                if output.status == RequestStatus.FAILED:
                    raise EngineFailed(f"the engine failed request {request_id}: {output.error}")
                if output.status != RequestStatus.FINISHED:
                    yield Step(text, len(tokens), None)
                    continue
                ended = bool(tokens) and tokens[-1] == self._eos
                yield Step(text, len(tokens), "stop" if ended else "length")
                return
        finally:
            with self._count:
                self.in_flight -= 1

    def stop(self) -> None:
        self._manager.stop(block=True)


class OpenAiRoutes:
    """``/v1/chat/completions``, ``/v1/completions``, ``/health`` and ``/metrics`` over a
    ``Generator``, in the OpenAI shapes the gateway expects of every engine."""

    def __init__(self, generator: Generator) -> None:
        self._generator = generator

    async def __call__(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/health":
            return _json(200, {"status": "ok"})
        if request.method == "GET" and request.path == "/metrics":
            text = f"berth_engine_requests_in_flight {self._generator.in_flight}\n"
            return Response(200, text.encode(), content_type="text/plain; version=0.0.4")
        if request.method != "POST" or request.path not in (
            "/v1/chat/completions",
            "/v1/completions",
        ):
            return _error(404, f"{request.method} {request.path} is not served by this engine")
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            return _error(400, f"the body is not JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        chat = request.path == "/v1/chat/completions"
        try:
            ids = self._ids(body, chat)
        except (TypeError, ValueError) as exc:
            return _error(400, str(exc))
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            return _error(400, "max_tokens must be a positive integer")
        answer = _Answer(self._generator.name, chat, len(ids))
        steps = _in_thread(self._generator.generate(ids, max_tokens or DEFAULT_MAX_TOKENS))
        if body.get("stream") is True:
            usage = (body.get("stream_options") or {}).get("include_usage") is True
            return Response(
                200, content_type="text/event-stream", stream=answer.events(steps, usage)
            )
        return _json(200, await answer.whole(steps))

    def _ids(self, body: dict[str, Any], chat: bool) -> list[int]:
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise ValueError("messages must be a non-empty list")
            return self._generator.chat_ids(messages)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise ValueError("prompt must be a string")
        return self._generator.prompt_ids(prompt)


class _Answer:
    """One request's answer, whole or as server-sent events."""

    def __init__(self, model: str, chat: bool, prompt_tokens: int) -> None:
        self._id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self._model = model
        self._chat = chat
        self._prompt_tokens = prompt_tokens
        self._created = int(time.time())

    async def whole(self, steps: AsyncGenerator[Step, None]) -> dict[str, Any]:
        last = Step("", 0, None)
        async for step in steps:
            last = step
        choice: dict[str, Any] = {"index": 0, "finish_reason": last.finish_reason}
        if self._chat:
            choice["message"] = {"role": "assistant", "content": last.text}
        else:
            choice["text"] = last.text
        return {**self._head(""), "choices": [choice], "usage": self._usage(last.tokens)}

    async def events(
        self, steps: AsyncGenerator[Step, None], usage: bool
    ) -> AsyncGenerator[bytes, None]:
        sent, tokens = "", 0
        async for step in steps:
            piece, sent, tokens = step.text[len(sent) :], step.text, step.tokens
            if piece or step.finish_reason:
                yield _event(self._chunk(piece, step.finish_reason))
        if usage:
            yield _event({**self._head(".chunk"), "choices": [], "usage": self._usage(tokens)})
        yield b"data: [DONE]\n\n"

    def _chunk(self, piece: str, finish_reason: str | None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason}
        if self._chat:
            choice["delta"] = {"role": "assistant", "content": piece}
        else:
            choice["text"] = piece
        return {**self._head(".chunk"), "choices": [choice]}

    def _head(self, suffix: str) -> dict[str, Any]:
        kind = "chat.completion" if self._chat else "text_completion"
        return {
            "id": self._id,
            "object": kind + (suffix if self._chat else ""),
            "created": self._created,
            "model": self._model,
        }

    def _usage(self, completion: int) -> dict[str, int]:
        return {
            "prompt_tokens": self._prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self._prompt_tokens + completion,
        }


async def _in_thread(steps: Iterator[Step]) -> AsyncGenerator[Step, None]:
    """``steps`` pulled in a thread of its own, each handed to the event loop as it comes."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Step | BaseException | None] = asyncio.Queue()

    def pull() -> None:
        try:
            for step in steps:
                loop.call_soon_threadsafe(queue.put_nowait, step)
        except BaseException as exc:  # handed over, raised in the caller
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pull, name="generate", daemon=True).start()
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _json(status: int, payload: dict[str, Any]) -> Response:
    return Response(status, json.dumps(payload).encode())


def _error(status: int, message: str) -> Response:
    """OpenAI's error shape, which the gateway turns into Databricks'."""
    return _json(status, {"error": {"message": message, "type": "invalid_request_error"}})


def serve(artifact: Path, socket_path: str, slots: int, drain_seconds: float) -> int:
    """Serve the artifact's weights on ``socket_path`` until SIGTERM or SIGINT, then answer
    what is in flight (at most ``drain_seconds``) and stop."""
    return asyncio.run(_serve(artifact, socket_path, slots, drain_seconds))


async def _serve(artifact: Path, socket_path: str, slots: int, drain_seconds: float) -> int:
    started = time.monotonic()
    log.info("loading %s: %d slots", artifact.name, slots)
    generator = await asyncio.to_thread(Generator, artifact, slots)
    first = await asyncio.to_thread(list, generator.generate(generator.prompt_ids("Hello"), 1))
    if not first or first[-1].finish_reason is None:
        raise EngineFailed("the model loaded but did not generate a token")
    loading = f"{socket_path}.loading"
    server = await start_unix_server(OpenAiRoutes(generator), loading, 16 * 1024 * 1024)
    os.replace(loading, socket_path)  # the socket appears once the engine answers: ready
    log.info("ready in %.2f s", time.monotonic() - started)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    os.unlink(socket_path)
    server.close()
    deadline = time.monotonic() + drain_seconds
    while generator.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if generator.in_flight:
        log.warning("stopping with %d request(s) still in flight", generator.in_flight)
    generator.stop()
    return 0
