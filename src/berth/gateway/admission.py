"""Outstanding requests per replica, and the bounded wait when every replica is busy."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict, deque

from berth.core.dataplane import EndpointRoute, EntityRoute, ReplicaRoute
from berth.core.errors import Unavailable
from berth.gateway.balancer import pick_entity, pick_replica


class Admission:
    """Grants replica slots; requests beyond capacity wait in a bounded FIFO per endpoint."""

    def __init__(self, max_queue: int, rng: random.Random | None = None) -> None:
        self.outstanding: defaultdict[str, int] = defaultdict(int)
        self._max_queue = max_queue
        self._waiters: defaultdict[str, deque[asyncio.Future[None]]] = defaultdict(deque)
        self._rng = rng or random.Random()
        self._down_until: dict[str, float] = {}

    def mark_down(self, replica_id: str, seconds: float = 5.0) -> None:
        """Avoid a replica that dropped a request until the controller's next table says more."""
        self._down_until[replica_id] = time.monotonic() + seconds

    def queue_depth(self, endpoint: str) -> int:
        return len(self._waiters[endpoint])

    async def acquire(self, route: EndpointRoute) -> tuple[EntityRoute, ReplicaRoute]:
        """A replica slot for one request; waits while all are busy (the caller bounds time)."""
        while True:
            choice = self._try(route)
            if choice is not None:
                return choice
            waiters = self._waiters[route.name]
            if len(waiters) >= self._max_queue:
                raise Unavailable(
                    f"Endpoint '{route.name}' is at capacity and its queue of "
                    f"{self._max_queue} requests is full; retry shortly.",
                    retry_after=1,
                )
            waiter = asyncio.get_running_loop().create_future()
            waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in waiters:
                    waiters.remove(waiter)
                elif not waiter.cancelled():
                    self.wake(route.name)  # we were woken but give up: pass the turn on
                raise

    def release(self, endpoint: str, replica_id: str) -> None:
        self.outstanding[replica_id] -= 1
        if self.outstanding[replica_id] <= 0:
            del self.outstanding[replica_id]
        self.wake(endpoint)

    def wake(self, endpoint: str) -> None:
        """Let the oldest waiter of ``endpoint`` try again (a slot freed or routes changed)."""
        waiters = self._waiters.get(endpoint)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def wake_all(self) -> None:
        for endpoint in list(self._waiters):
            for waiter in self._waiters.pop(endpoint):
                if not waiter.done():
                    waiter.set_result(None)

    def _try(self, route: EndpointRoute) -> tuple[EntityRoute, ReplicaRoute] | None:
        entity = pick_entity(route.entities, self._rng)
        if entity is None:
            raise Unavailable(
                f"Endpoint '{route.name}' has no ready replica yet; retry shortly.", retry_after=2
            )
        replicas = entity.replicas
        if self._down_until:
            now = time.monotonic()
            self._down_until = {r: t for r, t in self._down_until.items() if t > now}
            replicas = tuple(r for r in replicas if r.replica_id not in self._down_until)
            if not replicas:
                raise Unavailable(
                    f"Every replica of '{entity.name}' just dropped a request and is being "
                    "replaced; retry shortly.",
                    retry_after=1,
                )
        replica = pick_replica(replicas, self.outstanding, self._rng)
        if replica is None:
            return None
        self.outstanding[replica.replica_id] += 1
        return entity, replica
