"""Retiring replicas nobody routes to: each drained, then stopped, by a task beside the loop.

A replica is retired only once the published routes no longer name it, so that draining it
ends its traffic for good. A retirement that fails is logged and counted; the next pass that
still finds the replica unwanted retires it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from berth.backends.base import Backend
from berth.controller.stages import Stages
from berth.core.dataplane import Snapshot

Drain = Callable[[str], Awaitable[None]]
"""Returns once no gateway has a request in flight on the replica (or gave up waiting)."""


class Retirements:
    def __init__(self, backend: Backend, drain: Drain, stages: Stages) -> None:
        self._backend = backend
        self._drain = drain
        self._stages = stages
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def __contains__(self, replica_id: object) -> bool:
        """Whether the replica is being retired now."""
        return replica_id in self._tasks

    def retire(self, replica_ids: Iterable[str], published: Snapshot) -> None:
        """Start retiring each replica of ``replica_ids`` that ``published`` routes to no more."""
        routed = {
            replica.replica_id
            for endpoint in published.endpoints.values()
            for entity in endpoint.entities
            for replica in entity.replicas
        }
        for replica_id in replica_ids:
            if replica_id not in self._tasks and replica_id not in routed:
                self._tasks[replica_id] = asyncio.create_task(self._retire(replica_id))

    async def close(self) -> None:
        """Abandon the retirements under way (the backend stops every replica next)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _retire(self, replica_id: str) -> None:
        try:
            with self._stages.guard("retire", "retiring replica %s", replica_id):
                await self._drain(replica_id)
                await self._backend.stop(replica_id)
        finally:
            self._tasks.pop(replica_id, None)
