"""Whether every gateway process holds the newest routes, learnt beside the control loop.

The controller records a rollout's outcome only once every gateway routes by it. A pass never
waits for that: it asks ``holds``, and while the answer is no, a task waits for the gateways
and wakes the loop when they hold the version, so that a later pass records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from berth.controller.stages import Stages

Followers = Callable[[int], Awaitable[None]]
"""Returns once every gateway process holds this snapshot version (or gave up waiting)."""


class CatchUp:
    def __init__(self, followers: Followers, stages: Stages, wake: Callable[[], None]) -> None:
        self._followers = followers
        self._stages = stages
        self._wake = wake
        self._held = 0
        """The newest snapshot version every gateway process was seen to hold."""
        self._task: asyncio.Task[None] | None = None

    def holds(self, version: int) -> bool:
        """Whether every gateway holds ``version``; if not known yet, starts finding out."""
        if self._held >= version:
            return True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._wait(version), name="berth-catch-up")
        return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _wait(self, version: int) -> None:
        what = "waiting for gateways to hold snapshot %d"
        with self._stages.guard("record", what, version) as waiting:
            await self._followers(version)
        if not waiting.failed:
            self._held = max(self._held, version)
            self._wake()
