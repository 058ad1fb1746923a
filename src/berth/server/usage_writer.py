"""Moving the data plane's usage sums into the store, every few seconds, off the request path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from berth.core.usage import UsageKey, UsageSum
from berth.gateway.usage import UsageMeter
from berth.store import usage
from berth.store.db import Database

log = logging.getLogger(__name__)


class UsageWriter:
    def __init__(self, meter: UsageMeter, db: Database, every_s: float = 2.0) -> None:
        self._meter = meter
        self._db = db
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop, writing what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def flush(self) -> None:
        sums = self._meter.drain()
        if not sums:
            return
        try:
            await asyncio.to_thread(self._write, sums)
        except Exception:  # the store may be briefly away; usage must not stop serving
            log.exception("could not write usage of %d keys; they are lost", len(sums))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            await self.flush()

    def _write(self, sums: Mapping[UsageKey, UsageSum]) -> None:
        with self._db.transaction() as session:
            usage.add(session, sums)
