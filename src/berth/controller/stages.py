"""The stages of a controller pass, each timed and guarded apart.

A stage that raises is logged and counted (``berth_controller_stage_failures``) and the pass
goes on: later stages run on what earlier ones did produce, and skip only what needs a result
that is missing. A failure confined to one endpoint or replica is guarded on its own, so it
costs that one alone. Cancellation and other ``BaseException``s are never swallowed, nor is
`LeaseLost`: a server that no longer leads must stop the pass, not go on without a stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType

from berth.core.errors import LeaseLost
from berth.metrics import Metrics

log = logging.getLogger(__name__)


class Stages:
    def __init__(self, metrics: Metrics, now: Callable[[], float] = time.perf_counter) -> None:
        self._metrics = metrics
        self._now = now

    def run(self, stage: str) -> Guard:
        """Time ``stage`` into ``berth_controller_stage_seconds``; swallow its failure."""
        message = f"{stage} stage failed; the pass goes on without it"
        return Guard(self, stage, message, (), self._now)

    def guard(self, stage: str, what: str, *args: object) -> Guard:
        """Swallow the failure of one item of ``stage``; ``what`` (a %-format) names it."""
        return Guard(self, stage, what + " failed", args)

    def observe(self, stage: str, seconds: float) -> None:
        self._metrics.pass_stage.labels(stage).observe(seconds)

    def failed(self, stage: str, message: str, args: tuple[object, ...], exc: Exception) -> None:
        log.error(message, *args, exc_info=exc)
        self._metrics.pass_failures.labels(stage).inc()


class Guard:
    """A context manager: inside it, an ``Exception`` (but `LeaseLost`) is logged, counted and
    swallowed."""

    def __init__(
        self,
        stages: Stages,
        stage: str,
        message: str,
        args: tuple[object, ...],
        now: Callable[[], float] | None = None,
    ) -> None:
        """``now`` times the guarded code; None leaves it untimed (one item of a stage)."""
        self._stages = stages
        self._stage = stage
        self._message = message
        self._args = args
        self._now = now
        self._started = 0.0
        self.failed = False
        """Whether the guarded code raised (read after the ``with`` block)."""

    def __enter__(self) -> Guard:
        if self._now is not None:
            self._started = self._now()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if self._now is not None:
            self._stages.observe(self._stage, self._now() - self._started)
        if not isinstance(exc, Exception) or isinstance(exc, LeaseLost):
            return False
        self.failed = True
        self._stages.failed(self._stage, self._message, self._args, exc)
        return True
