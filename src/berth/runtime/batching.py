"""Adaptive batching: concurrent requests gathered into one model call, answers split back.

Runs when the replica is started with ``--max-batch-size`` above 1 and the model can merge
requests (see ``Batchable``: MLflow pyfunc models always, a score.py that defines
``predict_batch``). Streams never come here.

Gathering (``Batcher``, on the event loop). The first request opens a batch; the batch leaves
for a model thread as soon as one of these holds:

- it holds ``max_size`` requests;
- ``max_wait_s`` has passed since its first request arrived;
- no other batch is on a model thread: the model would otherwise sit idle, so under low load a
  request is scored at once, as without batching. Requests gather only while the model is busy.

Scoring (``BatchScorer``, on the model thread). Each body is prepared (parsed) alone, so a body
the model cannot read is refused alone, before any model call. The rest are grouped by their
``merge_key``; each group of two or more is one ``predict_merged`` call. When that call raises,
or its output cannot be split into one answer per request, the group's requests are scored one
by one with ``predict_one``, so only the bad ones fail and each answer is what it would have
been alone. A group's answers are handed back as soon as its call is done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from berth.runtime.histograms import Histogram

log = logging.getLogger("berth.runtime")

P = TypeVar("P")


class Batchable(Protocol[P]):
    """What a model offers the batcher; ``P`` is a body as the model has prepared it."""

    def prepare(self, body: Any) -> P:
        """Read one decoded JSON body; raise if the model cannot take it."""

    def merge_key(self, prepared: P) -> Hashable | None:
        """Equal keys: the inputs may share a call. None: this one is always scored alone."""

    def predict_merged(self, inputs: list[P]) -> Sequence[Any] | None:
        """One model call for all ``inputs``: one JSON answer each, in order, or None when the
        output cannot be split by input."""

    def predict_one(self, prepared: P) -> Any:
        """One input's JSON answer, exactly as an unbatched request gets it."""


@dataclass(frozen=True)
class Outcome:
    """One request's share of a batch."""

    value: Any = None
    error: Exception | None = None
    shared: int = 0
    """How many requests shared the model call that answered it; 0 when refused before any."""


Deliver = Callable[[list[int], list[Outcome]], None]
"""Takes the outcomes of the bodies at those indices: one model call's, or the refusals."""


class BatchScorer:
    """The model-thread half: prepare, group, predict, split, fall back."""

    def __init__(self, model: Batchable[Any]) -> None:
        self._model = model
        self._warned = False

    def score(self, bodies: Sequence[Any], deliver: Deliver) -> None:
        prepared: dict[int, Any] = {}
        groups: dict[Hashable, list[int]] = {}
        refused: list[int] = []
        errors: list[Outcome] = []
        for i, body in enumerate(bodies):
            try:
                prepared[i] = self._model.prepare(body)
            except Exception as exc:
                refused.append(i)
                errors.append(Outcome(error=exc))
                continue
            key = self._model.merge_key(prepared[i])
            groups.setdefault(object() if key is None else key, []).append(i)
        if refused:
            deliver(refused, errors)
        for members in groups.values():
            self._predict_group(members, [prepared[i] for i in members], deliver)

    def _predict_group(self, members: list[int], inputs: list[Any], deliver: Deliver) -> None:
        if len(inputs) > 1:
            values = self._predict_merged(inputs)
            if values is not None:
                deliver(members, [Outcome(value, shared=len(inputs)) for value in values])
                return
        for i, prepared in zip(members, inputs):
            try:
                outcome = Outcome(self._model.predict_one(prepared), shared=1)
            except Exception as exc:
                outcome = Outcome(error=exc, shared=1)
            deliver([i], [outcome])

    def _predict_merged(self, inputs: list[Any]) -> Sequence[Any] | None:
        try:
            values = self._model.predict_merged(inputs)
        except Exception as exc:  # some input is bad: the fallback finds which
            log.debug("a merged predict of %d requests raised %r", len(inputs), exc)
            return None
        if values is None or len(values) != len(inputs):
            if not self._warned:
                self._warned = True
                log.warning(
                    "the model's answer to %d merged requests cannot be split into one answer "
                    "each; such batches are scored one request at a time",
                    len(inputs),
                )
            return None
        return values


class Answer(NamedTuple):
    outcome: Outcome
    waited: float
    """Seconds from the request's arrival to the start of its batch on a model thread."""


@dataclass
class _Waiter:
    body: Any
    future: asyncio.Future[Answer]
    arrived: float


class Batcher:
    """The event-loop half: gathers requests into batches and runs each on a model thread.

    A batch takes one of the replica's concurrency ``slots`` (and one pool thread) while it
    runs; requests that are gathering hold none.
    """

    def __init__(
        self,
        model: Batchable[Any],
        *,
        max_size: int,
        max_wait_s: float,
        pool: ThreadPoolExecutor,
        slots: asyncio.Semaphore,
        sizes: Histogram,
        latency: Histogram,
    ) -> None:
        self._scorer = BatchScorer(model)
        self._max_size = max_size
        self._max_wait = max_wait_s
        self._pool = pool
        self._slots = slots
        self._sizes = sizes
        self._latency = latency
        self._queue: deque[_Waiter] = deque()
        self._gathering = False
        self._running = 0
        self._wake: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def predict(self, body: Any) -> Answer:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(body, loop.create_future(), time.monotonic())
        self._queue.append(waiter)
        if self._gathering:
            self._poke()
        else:
            self._start_gathering()
        return await waiter.future

    def _start_gathering(self) -> None:
        self._gathering = True
        task = asyncio.get_running_loop().create_task(self._gather())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _poke(self) -> None:
        """Let the gathering batch look again: a request arrived or a batch finished."""
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _gather(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = self._queue[0].arrived + self._max_wait
        while len(self._queue) < self._max_size and self._running:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wake = wake = loop.create_future()
            timer = loop.call_later(remaining, _settle, wake)
            try:
                await wake
            finally:
                timer.cancel()
                self._wake = None
        batch = [self._queue.popleft() for _ in range(min(self._max_size, len(self._queue)))]
        self._gathering = False
        if self._queue:
            self._start_gathering()
        self._running += 1
        try:
            await self._run(batch)
        finally:
            self._running -= 1
            self._poke()

    async def _run(self, batch: list[_Waiter]) -> None:
        loop = asyncio.get_running_loop()
        bodies = [waiter.body for waiter in batch]

        def work() -> None:
            started = time.monotonic()

            def deliver(indices: list[int], outcomes: list[Outcome]) -> None:
                waiters = [batch[i] for i in indices]
                loop.call_soon_threadsafe(self._resolve, waiters, outcomes, started)

            self._scorer.score(bodies, deliver)

        failure: Exception = RuntimeError("the batch ended without an answer")
        try:
            async with self._slots:
                await loop.run_in_executor(self._pool, work)
        except Exception as exc:  # a fault of berth's, not of a request: still answer each
            log.exception("scoring a batch of %d requests failed", len(batch))
            failure = exc
        finally:
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_exception(failure)

    def _resolve(self, waiters: list[_Waiter], outcomes: list[Outcome], started: float) -> None:
        now = time.monotonic()
        if outcomes[0].shared:
            self._sizes.observe(outcomes[0].shared)
        for waiter, outcome in zip(waiters, outcomes):
            self._latency.observe(now - started)
            if not waiter.future.done():
                waiter.future.set_result(Answer(outcome, started - waiter.arrived))


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
