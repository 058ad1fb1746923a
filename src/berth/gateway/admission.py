"""Outstanding requests per replica, the bounded wait when every replica is busy, and the wait
for a replica of an entity scaled to zero; what it all comes to is the load the autoscaler reads.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from berth.core.dataplane import EndpointRoute, EntityRoute, ReplicaRoute
from berth.core.errors import NotFound, Unavailable
from berth.core.load import EntityKey, EntityLoad
from berth.gateway.balancer import pick_entity, pick_replica

Routes = Callable[[str], EndpointRoute | None]
"""The newest route table of an endpoint by name (a waiting request re-reads it)."""
Demand = Callable[[str, str], None]
"""Told (endpoint, served entity) when a request waits for an entity that has no replica."""


@dataclass(slots=True)
class Slot:
    """One request's place on a replica, held from ``acquire`` to ``release``."""

    endpoint: str
    entity: EntityRoute
    replica: ReplicaRoute
    taken: float


@dataclass(slots=True)
class _Counters:
    in_flight: int = 0
    waiting: int = 0
    busy_s: float = 0.0
    served: int = 0


class Admission:
    """Grants replica slots; requests beyond capacity wait in a bounded FIFO per endpoint, and
    requests for an entity with no live replica (scaled to zero, or its only replica being
    replaced) wait (at most ``cold_start_s``) for one."""

    def __init__(
        self,
        max_queue: int,
        rng: random.Random | None = None,
        *,
        routes: Routes | None = None,
        on_demand: Demand | None = None,
        cold_start_s: float = 30.0,
    ) -> None:
        self.outstanding: defaultdict[str, int] = defaultdict(int)
        self._max_queue = max_queue
        self._waiters: defaultdict[str, deque[asyncio.Future[None]]] = defaultdict(deque)
        self._cold: defaultdict[str, deque[asyncio.Future[None]]] = defaultdict(deque)
        """Requests waiting for a replica of an entity scaled to zero: woken by new routes
        only, so that they never take the turn of a request waiting for a free slot."""
        self._rng = rng or random.Random()
        self._down_until: dict[str, float] = {}
        self._routes = routes
        self._on_demand = on_demand
        self._cold_start_s = cold_start_s
        self._counters: dict[EntityKey, _Counters] = {}

    def mark_down(self, replica_id: str, seconds: float = 5.0) -> None:
        """Avoid a replica that dropped a request until the controller's next table says more."""
        self._down_until[replica_id] = time.monotonic() + seconds

    def queue_depth(self, endpoint: str) -> int:
        return len(self._waiters[endpoint])

    def load(self) -> dict[EntityKey, EntityLoad]:
        """Each served entity's demand as this process sees it."""
        return {
            key: EntityLoad(c.in_flight, c.waiting, c.busy_s, c.served)
            for key, c in self._counters.items()
        }

    def entity_load(self, endpoint: str, entity: str) -> EntityLoad:
        """One served entity's figures now (zeros for one this process has not served)."""
        c = self._counters.get((endpoint, entity)) or _Counters()
        return EntityLoad(c.in_flight, c.waiting, c.busy_s, c.served)

    def pick(self, route: EndpointRoute) -> EntityRoute:
        """A served entity of ``route`` by traffic; 503 when none is live."""
        entity = pick_entity(route.entities, self._rng)
        if entity is None:
            raise Unavailable(
                f"Endpoint '{route.name}' has no ready replica yet; retry shortly.", retry_after=2
            )
        return entity

    async def acquire(self, route: EndpointRoute, entity: str | None = None) -> Slot:
        """A replica slot for one request; waits while all are busy (the caller bounds time)
        or while the chosen entity starts from zero (bounded here: 503 past ``cold_start_s``).

        ``entity`` names the served entity already chosen for the request (its provisioned
        band reserved); while the routes have it live, its replicas are the ones waited for."""
        cold_until: float | None = None
        while True:
            chosen, replica, starting = self._try(route, entity)
            counters = self._counters_of(route.name, chosen.name)
            if replica is not None:
                counters.in_flight += 1
                return Slot(route.name, chosen, replica, time.perf_counter())
            waiters = self._waiters[route.name]
            if starting:
                waiters = self._cold[route.name]
                if cold_until is None:
                    cold_until = time.monotonic() + self._cold_start_s
                if self._on_demand is not None:
                    self._on_demand(route.name, chosen.name)
            elif len(waiters) >= self._max_queue:
                raise Unavailable(
                    f"Endpoint '{route.name}' is at capacity and its queue of "
                    f"{self._max_queue} requests is full; retry shortly.",
                    retry_after=1,
                )
            cold = cold_until if starting else None
            back = self._back_at(chosen) if starting else None
            await self._wait(waiters, counters, cold, route.name, chosen.name, back)
            route = self._newest(route)

    def release(self, slot: Slot) -> None:
        replica_id = slot.replica.replica_id
        self.outstanding[replica_id] -= 1
        if self.outstanding[replica_id] <= 0:
            del self.outstanding[replica_id]
        counters = self._counters_of(slot.endpoint, slot.entity.name)
        counters.in_flight -= 1
        counters.served += 1
        counters.busy_s += time.perf_counter() - slot.taken
        self.wake(slot.endpoint)

    def wake(self, endpoint: str) -> None:
        """Let the oldest waiter of ``endpoint`` try again (a slot freed or routes changed)."""
        waiters = self._waiters.get(endpoint)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def routes_changed(self, routed: set[str]) -> None:
        """New routes: replicas they no longer hold lose their down mark (when one comes
        back, it is a new process), and every waiter tries again."""
        self._down_until = {r: t for r, t in self._down_until.items() if r in routed}
        self.wake_all()

    def wake_all(self) -> None:
        """Every waiter tries again: new routes may have the replica it waits for."""
        for queues in (self._waiters, self._cold):
            for endpoint in list(queues):
                for waiter in queues.pop(endpoint):
                    if not waiter.done():
                        waiter.set_result(None)

    async def _wait(
        self,
        waiters: deque[asyncio.Future[None]],
        counters: _Counters,
        cold_until: float | None,
        endpoint: str,
        entity: str,
        back_at: float | None = None,
    ) -> None:
        """Until woken; a cold wait also ends at ``back_at``, when a replica marked down may
        be tried again, and fails at ``cold_until``."""
        waiter = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        counters.waiting += 1
        try:
            if cold_until is None:
                await waiter
            else:
                until = cold_until if back_at is None else min(cold_until, back_at)
                async with asyncio.timeout(max(until - time.monotonic(), 0.0)):
                    await waiter
        except TimeoutError:
            if waiter in waiters:
                waiters.remove(waiter)
            assert cold_until is not None
            if time.monotonic() < cold_until:
                return  # a replica's down mark ran out: try it again
            raise Unavailable(
                f"Served entity '{entity}' of endpoint '{endpoint}' has no ready replica (it is "
                "scaled to zero or its replica is being replaced) and none became ready within "
                f"{self._cold_start_s:.0f}s; retry shortly.",
                retry_after=max(1, round(self._cold_start_s / 3)),
            ) from None
        except BaseException:
            if waiter in waiters:
                waiters.remove(waiter)
            elif not waiter.cancelled() and cold_until is None:
                self.wake(endpoint)  # we were woken but give up: pass the turn on
            raise
        finally:
            counters.waiting -= 1

    def refreshed(self, route: EndpointRoute) -> EndpointRoute:
        """The newest table of ``route``'s endpoint; ``route`` itself once it is gone."""
        newest = self._routes(route.name) if self._routes is not None else None
        return newest or route

    def _newest(self, route: EndpointRoute) -> EndpointRoute:
        if self._routes is None:
            return route
        newest = self._routes(route.name)
        if newest is None:
            raise NotFound(f"Endpoint with name '{route.name}' was deleted.")
        return newest

    def _back_at(self, entity: EntityRoute) -> float | None:
        """When the first of the entity's routed replicas, all marked down, may be tried
        again; None when none is routed (only new routes can help then)."""
        marks = [
            self._down_until[r.replica_id]
            for r in entity.replicas
            if r.replica_id in self._down_until
        ]
        return min(marks) if marks else None

    def _counters_of(self, endpoint: str, entity: str) -> _Counters:
        counters = self._counters.get((endpoint, entity))
        if counters is None:
            counters = self._counters[(endpoint, entity)] = _Counters()
        return counters

    def _try(
        self, route: EndpointRoute, chosen: str | None
    ) -> tuple[EntityRoute, ReplicaRoute | None, bool]:
        """The entity a request goes to (``chosen`` while it is live), a free replica of it
        (None: it must wait), and whether it must wait for a replica to start: none is routed
        (scaled to zero, or the only one is being replaced), or every routed one just dropped
        a request."""
        entity = next((e for e in route.entities if e.name == chosen and e.live), None)
        if entity is None:
            entity = self.pick(route)
        replicas = entity.replicas
        if self._down_until:
            now = time.monotonic()
            self._down_until = {r: t for r, t in self._down_until.items() if t > now}
            replicas = tuple(r for r in replicas if r.replica_id not in self._down_until)
        if not replicas:
            return entity, None, True
        replica = pick_replica(replicas, self.outstanding, self._rng)
        if replica is not None:
            self.outstanding[replica.replica_id] += 1
        return entity, replica, False
