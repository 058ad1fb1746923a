"""The replica's routes: health that never waits behind inference, and bounded predict
(batched by ``batching.Batcher`` when the replica is started with ``--max-batch-size``)."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import Any

from berth.core.heap import freeze_startup_heap
from berth.core.latency import LATENCY_BOUNDS
from berth.runtime.batching import Batcher
from berth.runtime.histograms import BATCH_SIZE_BOUNDS, Histogram
from berth.runtime.http import Request, Response, error_response
from berth.runtime.models import LoadedModel, ModelInputError

log = logging.getLogger("berth.runtime")

READY_BODY = b'{"status":"ready"}'


PREDICT_LOG_HEADER = "x-berth-predict-log"
predict_log = logging.getLogger("berth.predict")


def _predict_log(request: Request, response: Response | None, seconds: float) -> None:
    """The endpoint's predict log (switched on by the gateway per request): one JSON line per
    model call, into the replica's output, beside what the model itself prints."""
    line = {
        "kind": "predict",
        "ts": time.time_ns() // 1_000_000,
        "request_id": request.headers.get("x-request-id"),
        "status": response.status if response is not None else 500,
        "latency_ms": round(seconds * 1000, 3),
        "stream": response is not None and response.stream is not None,
    }
    predict_log.info(json.dumps(line, separators=(",", ":")))


_END = object()
"""What ``next`` returns once a model's stream is exhausted."""


def _step(chunks: Iterator[Any]) -> Any:
    return next(chunks, _END)


def _describe(exc: Exception) -> str:
    return (
        str(exc)
        if isinstance(exc, ModelInputError)
        else f"Model raised {type(exc).__name__}: {exc}"
    )


def _failure(exc: Exception) -> Response:
    """A model's exception as the answer: the input's fault or the model's, never a crash."""
    if not isinstance(exc, ModelInputError):
        log.exception("predict failed", exc_info=exc)
    return error_response(400, "BAD_REQUEST", _describe(exc))


def _answer(result: Any) -> Response:
    try:
        return Response(200, json.dumps(result).encode())
    except (TypeError, ValueError) as exc:
        return error_response(500, "INTERNAL_ERROR", f"Model output is not JSON: {exc}")


INLINE_BELOW_S = 0.002
"""A model that answers faster than this is called on the event loop, not on a thread: the hop
to a thread and back costs more than such a call. Health then waits behind at most one such
call; a slower answer raises the average and sends the next calls back to threads."""
INLINE_MAX_BODY = 16 * 1024
"""Only bodies this small are scored inline: a big one may take longer than the average says."""


class Phase(str, Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class ReplicaApp:
    """Loads the model in a thread, then scores requests on a bounded pool of threads (or, for
    a model that answers within a couple of milliseconds, on the event loop: ``INLINE_BELOW_S``).

    Health is answered on the event loop from a field, so it never queues behind a thread's
    inference, and behind at most one such short inline call.
    With ``max_batch_size`` above 1 and a model that can merge requests, concurrent requests
    share model calls; each answer then says how long it waited for its batch and how many
    requests shared its call.
    """

    def __init__(
        self,
        load: Callable[[], LoadedModel],
        *,
        max_concurrency: int,
        health_route: str = "/health",
        predict_routes: tuple[str, ...] = ("/invocations", "/predict"),
        warmup: Any = None,
        max_batch_size: int = 1,
        max_batch_wait_s: float = 0.005,
    ) -> None:
        self._load = load
        self._warmup = warmup
        self._model: LoadedModel | None = None
        self.phase = Phase.LOADING
        self.failure = ""
        self._health_routes = {health_route, "/health", "/ping"}
        self._predict_routes = set(predict_routes)
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="predict")
        self._slots = asyncio.Semaphore(max_concurrency)
        self.in_flight = 0
        self.latency = Histogram(LATENCY_BOUNDS)
        self._typical_s: float | None = None
        """A moving average of ``predict`` seconds: under ``INLINE_BELOW_S`` the event loop
        calls the model itself for small bodies."""
        self.batch_sizes = Histogram(BATCH_SIZE_BOUNDS)
        self._max_batch_size = max_batch_size
        self._max_batch_wait = max_batch_wait_s
        self._batcher: Batcher | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def start_loading(self) -> None:
        """Load in a thread so health answers "loading" meanwhile; a failure stays readable."""
        threading.Thread(target=self._load_model, name="load", daemon=True).start()

    def _load_model(self) -> None:
        started = time.monotonic()
        try:
            model = self._load()
            if self._warmup is not None:
                model.predict(self._warmup)
            batcher = self._batcher_for(model)
        except BaseException as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            self.phase = Phase.FAILED
            log.exception("model failed to load")
        else:
            self._batcher = batcher  # before the model, so a request that sees one sees both
            self._model = model
            freeze_startup_heap()  # the model and its libraries are alive for good
            self.phase = Phase.READY
            log.info("model loaded in %.2fs", time.monotonic() - started)

    def _batcher_for(self, model: LoadedModel) -> Batcher | None:
        if self._max_batch_size <= 1:
            return None
        batchable = model.batchable()
        if batchable is None:
            log.info(
                "this model cannot merge requests (a score.py needs predict_batch): no batching"
            )
            return None
        log.info(
            "batching up to %d requests, waiting at most %.1f ms",
            self._max_batch_size,
            self._max_batch_wait * 1000,
        )
        return Batcher(
            batchable,
            max_size=self._max_batch_size,
            max_wait_s=self._max_batch_wait,
            pool=self._pool,
            slots=self._slots,
            sizes=self.batch_sizes,
            latency=self.latency,
        )

    async def __call__(self, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        if path in self._health_routes:
            return self._health()
        if path == "/metrics":
            return self._metrics()
        if path in self._predict_routes:
            if request.method != "POST":
                return error_response(405, "BAD_REQUEST", f"use POST on {path}")
            self._enter()
            response: Response | None = None
            started = time.perf_counter()
            try:
                response = await self._predict(request.body)
                return response
            finally:
                if response is None or response.stream is None:
                    self._leave()  # a stream leaves when its last chunk is out
                if request.headers.get(PREDICT_LOG_HEADER) == "1":
                    _predict_log(request, response, time.perf_counter() - started)
        return error_response(404, "ENDPOINT_NOT_FOUND", f"no route {request.method} {path}")

    def _enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def _leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    def _metrics(self) -> Response:
        figures = {
            "predict_seconds": self.latency.to_json(),
            "batch_size": self.batch_sizes.to_json(),
        }
        return Response(200, json.dumps(figures).encode())

    def _health(self) -> Response:
        if self.phase is Phase.READY:
            return Response(200, READY_BODY)
        body = {"status": self.phase.value, "message": self.failure}
        return Response(503, json.dumps(body).encode())

    async def _predict(self, raw: bytes) -> Response:
        model = self._model
        if model is None:
            return error_response(503, "TEMPORARILY_UNAVAILABLE", f"model is {self.phase.value}")
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
            return error_response(400, "BAD_REQUEST", f"Malformed JSON in request body: {exc}")
        if isinstance(body, dict) and body.get("stream") is True:
            return await self._predict_stream(model, body)
        batcher = self._batcher
        if batcher is not None:
            return await self._predict_batched(batcher, body)
        typical = self._typical_s
        if typical is not None and typical < INLINE_BELOW_S and len(raw) <= INLINE_MAX_BODY:
            started = time.perf_counter()
            try:
                result = model.predict(body)
            except Exception as exc:
                return _failure(exc)
            finally:
                self._observe(time.perf_counter() - started)
            return _answer(result)
        async with self._slots:
            loop = asyncio.get_running_loop()
            started = time.perf_counter()
            try:
                result = await loop.run_in_executor(self._pool, model.predict, body)
            except Exception as exc:
                return _failure(exc)
            finally:
                self._observe(time.perf_counter() - started)
        return _answer(result)

    def _observe(self, seconds: float) -> None:
        self.latency.observe(seconds)
        typical = self._typical_s
        self._typical_s = seconds if typical is None else typical * 0.9 + seconds * 0.1

    async def _predict_batched(self, batcher: Batcher, body: Any) -> Response:
        outcome, waited = await batcher.predict(body)
        headers: tuple[tuple[str, str], ...] = (("x-berth-batch-ms", f"{waited * 1000:.3f}"),)
        if outcome.shared:  # a request refused before any model call shared none
            headers += (("x-berth-batch-size", str(outcome.shared)),)
        response = _failure(outcome.error) if outcome.error is not None else _answer(outcome.value)
        return dataclasses.replace(response, headers=headers)

    async def _predict_stream(self, model: LoadedModel, body: dict[str, Any]) -> Response:
        """Server-sent events, one ``data:`` line a chunk, ending ``data: [DONE]``.

        The first chunk is computed before answering, so a refused request gets an error
        status rather than a broken stream; the slot is held until the last chunk is out.
        """
        await self._slots.acquire()
        # Each step of the model's generator may run on another pool thread, but always in
        # this one context: MLflow sets a context variable when a stream starts and resets it
        # when it ends, which fails across contexts.
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        try:
            chunks = await loop.run_in_executor(self._pool, context.run, model.predict_stream, body)
            if chunks is None:
                raise ModelInputError(
                    'This model does not stream: send the request without "stream": true.'
                )
            first = await loop.run_in_executor(self._pool, context.run, _step, chunks)
        except Exception as exc:
            self._slots.release()
            return _failure(exc)
        stream = self._events(chunks, first, context)
        return Response(200, content_type="text/event-stream", stream=stream)

    async def _events(
        self, chunks: Iterator[Any], first: Any, context: contextvars.Context
    ) -> AsyncGenerator[bytes, None]:
        loop = asyncio.get_running_loop()
        try:
            chunk = first
            try:
                while chunk is not _END:
                    yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
                    chunk = await loop.run_in_executor(self._pool, context.run, _step, chunks)
            except Exception as exc:
                log.exception("predict_stream failed")
                error = {"error_code": "BAD_REQUEST", "message": _describe(exc)}
                yield b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                await loop.run_in_executor(self._pool, context.run, close)
            self._slots.release()
            self._leave()

    async def drain(self, timeout: float) -> bool:
        """Wait until no request is in flight; False if ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
