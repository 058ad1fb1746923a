"""Batching: when requests share a model call, how they are grouped, and the fallbacks that
keep one bad request from failing the others."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from berth.runtime.batching import Answer, Batcher, BatchScorer, Outcome
from berth.runtime.histograms import BATCH_SIZE_BOUNDS, Histogram

LONG_WAIT_S = 30.0
"""A batch wait no test can sit out: a test that passes with it did not wait for it."""


class Doubler:
    """A model whose answer to ``{"kind": k, "rows": [...]}`` is each row doubled.

    Bodies of one ``kind`` may share a call (``"solo"`` never does); a row ``"bad"`` makes any
    call holding it raise; a kind ``"summary"`` answers merged calls with one number, which
    cannot be split; ``{"hold": true}`` keeps its model thread until ``release`` is set.
    """

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.holding = threading.Event()
        self.release = threading.Event()

    def prepare(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not ("rows" in body or "hold" in body):
            raise ValueError("expected rows")
        return body

    def merge_key(self, prepared: dict[str, Any]) -> Hashable | None:
        kind = prepared.get("kind")
        return None if kind in (None, "solo") else kind

    def predict_merged(self, inputs: list[dict[str, Any]]) -> Sequence[Any] | None:
        self.calls.append(len(inputs))
        rows = [row for body in inputs for row in body["rows"]]
        if inputs[0]["kind"] == "summary":
            return None
        doubled = iter(self._double(rows))
        return [[next(doubled) for _ in body["rows"]] for body in inputs]

    def predict_one(self, prepared: dict[str, Any]) -> Any:
        self.calls.append(1)
        if prepared.get("hold"):
            self.holding.set()
            assert self.release.wait(10)
            return "held"
        return self._double(prepared["rows"])

    @staticmethod
    def _double(rows: list[Any]) -> list[Any]:
        if "bad" in rows:
            raise ValueError("a bad row")
        return [2 * row for row in rows]


def score(model: Doubler, bodies: list[Any]) -> list[tuple[list[int], list[Outcome]]]:
    deliveries: list[tuple[list[int], list[Outcome]]] = []
    BatchScorer(model).score(
        bodies, lambda indices, outcomes: deliveries.append((indices, outcomes))
    )
    return deliveries


def answers(deliveries: list[tuple[list[int], list[Outcome]]]) -> dict[int, Outcome]:
    return {
        i: o for indices, outcomes in deliveries for i, o in zip(indices, outcomes, strict=True)
    }


def test_alike_requests_share_one_call_and_others_get_their_own() -> None:
    model = Doubler()
    bodies = [
        {"kind": "a", "rows": [1, 2]},
        {"kind": "b", "rows": [3]},
        {"kind": "a", "rows": [4]},
        {"kind": "solo", "rows": [5]},
        {"kind": "solo", "rows": [6]},
        {"kind": "a", "rows": [7, 8, 9]},
    ]
    got = answers(score(model, bodies))
    assert [got[i].value for i in range(6)] == [[2, 4], [6], [8], [10], [12], [14, 16, 18]]
    assert [got[i].shared for i in range(6)] == [3, 1, 3, 1, 1, 3]
    assert sorted(model.calls) == [1, 1, 1, 3]


def test_a_merged_call_that_raises_is_retried_one_by_one_so_only_the_bad_request_fails() -> None:
    model = Doubler()
    bodies = [
        {"kind": "a", "rows": [1]},
        {"kind": "a", "rows": ["bad"]},
        {"kind": "a", "rows": [3]},
    ]
    got = answers(score(model, bodies))
    assert got[0] == Outcome([2], shared=1)
    assert isinstance(got[1].error, ValueError)
    assert got[2] == Outcome([6], shared=1)
    assert model.calls == [3, 1, 1, 1]


def test_an_unreadable_body_is_refused_first_and_alone() -> None:
    model = Doubler()
    deliveries = score(model, [{"kind": "a", "rows": [1]}, "junk", {"kind": "a", "rows": [2]}])
    (refused, (refusal,)), (merged, outcomes) = deliveries
    assert refused == [1]
    assert isinstance(refusal.error, ValueError)
    assert refusal.shared == 0
    assert merged == [0, 2]
    assert outcomes == [Outcome([2], shared=2), Outcome([4], shared=2)]


def test_an_answer_that_cannot_be_split_is_replaced_by_answers_one_by_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = Doubler()
    got = answers(
        score(model, [{"kind": "summary", "rows": [1]}, {"kind": "summary", "rows": [2]}])
    )
    assert got == {0: Outcome([2], shared=1), 1: Outcome([4], shared=1)}
    assert "cannot be split" in caplog.text


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(8) as executor:
        yield executor


def batcher(
    model: Doubler,
    pool: ThreadPoolExecutor,
    *,
    max_size: int,
    max_wait_s: float,
    sizes: Histogram | None = None,
) -> Batcher:
    return Batcher(
        model,
        max_size=max_size,
        max_wait_s=max_wait_s,
        pool=pool,
        slots=asyncio.Semaphore(8),
        sizes=sizes or Histogram(BATCH_SIZE_BOUNDS),
        latency=Histogram((1.0,)),
    )


T = TypeVar("T")


def run(scenario: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, returning once the batcher's own tasks have ended too: a batch's task
    ends a moment after it delivered its answers, and a replica's loop outlives it."""

    async def then_idle() -> T:
        result = await scenario
        others = asyncio.all_tasks() - {asyncio.current_task()}
        await asyncio.wait_for(asyncio.gather(*others), 5)
        return result

    return asyncio.run(then_idle())


def test_a_lone_request_is_scored_at_once_whatever_the_wait(pool: ThreadPoolExecutor) -> None:
    async def scenario() -> Answer:
        lone = batcher(Doubler(), pool, max_size=16, max_wait_s=LONG_WAIT_S)
        return await asyncio.wait_for(lone.predict({"kind": "a", "rows": [1]}), 5)

    outcome, waited = run(scenario())
    assert outcome == Outcome([2], shared=1)
    assert waited < 1.0


def test_requests_that_arrive_while_the_model_is_busy_share_one_call(
    pool: ThreadPoolExecutor,
) -> None:
    model = Doubler()

    async def scenario() -> list[Answer]:
        loop = asyncio.get_running_loop()
        gathering = batcher(model, pool, max_size=4, max_wait_s=LONG_WAIT_S)
        held = asyncio.ensure_future(gathering.predict({"hold": True}))
        assert await loop.run_in_executor(None, model.holding.wait, 5)
        bodies = [{"kind": "a", "rows": [n]} for n in range(4)]
        # Full at four, so it leaves without waiting out LONG_WAIT_S or for the held call.
        batch = await asyncio.wait_for(asyncio.gather(*map(gathering.predict, bodies)), 5)
        model.release.set()
        assert (await held).outcome.value == "held"
        return batch

    batch = run(scenario())
    assert [answer.outcome for answer in batch] == [Outcome([2 * n], shared=4) for n in range(4)]
    assert model.calls == [1, 4]


def test_a_batch_leaves_after_the_wait_even_while_the_model_is_busy(
    pool: ThreadPoolExecutor,
) -> None:
    model = Doubler()
    sizes = Histogram(BATCH_SIZE_BOUNDS)

    async def scenario() -> list[Answer]:
        loop = asyncio.get_running_loop()
        waiting = batcher(model, pool, max_size=16, max_wait_s=0.05, sizes=sizes)
        held = asyncio.ensure_future(waiting.predict({"hold": True}))
        assert await loop.run_in_executor(None, model.holding.wait, 5)
        bodies = [{"kind": "a", "rows": [1]}, {"kind": "a", "rows": [2]}, "junk"]
        batch = await asyncio.wait_for(asyncio.gather(*map(waiting.predict, bodies)), 5)
        assert not held.done()
        model.release.set()
        await held
        return batch

    first, second, junk = run(scenario())
    assert (first.outcome, second.outcome) == (Outcome([2], shared=2), Outcome([4], shared=2))
    assert junk.outcome.shared == 0
    assert isinstance(junk.outcome.error, ValueError)
    assert min(first.waited, second.waited, junk.waited) >= 0.05
    assert (sizes.count, sizes.total) == (2, 3.0)  # the held call and the pair; no refusal


def test_batch_sizes_are_counted_cumulatively() -> None:
    sizes = Histogram(BATCH_SIZE_BOUNDS)
    for size in (1, 3, 3, 200):
        sizes.observe(size)
    assert sizes.to_json() == {
        "le": [1, 2, 4, 8, 16, 32, 64, 128],
        "counts": [1, 1, 3, 3, 3, 3, 3, 3],
        "count": 4,
        "sum": 207.0,
    }
