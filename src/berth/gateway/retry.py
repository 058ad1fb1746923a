"""The one retry rule of the replica path: a replica that answered nothing (refused, or dropped
the connection before any byte) is marked down and the request goes to another one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from berth.core.dataplane import EndpointRoute
from berth.core.errors import DeadlineExceeded
from berth.gateway import stages
from berth.gateway.admission import Admission, Slot
from berth.gateway.upstream import ReplicaUnreachable

MAX_ATTEMPTS = 3
T = TypeVar("T")


async def on_a_replica(
    admission: Admission,
    route: EndpointRoute,
    timeout_s: float,
    attempt: Callable[[Slot], Awaitable[T]],
    entity: str | None = None,
) -> T:
    """``attempt`` on a slot of one of ``route``'s replicas (of served entity ``entity``, when
    one was chosen already), held for the attempt's length; a `ReplicaUnreachable` moves it
    to another replica, up to ``MAX_ATTEMPTS`` in all.

    ``timeout_s`` bounds the waits for a free replica, all attempts together.
    """
    deadline = time.perf_counter() + timeout_s
    for tried in range(1, MAX_ATTEMPTS + 1):
        slot = await _acquire(admission, route, entity, deadline, timeout_s)
        try:
            return await attempt(slot)
        except ReplicaUnreachable:
            admission.mark_down(slot.replica.replica_id)
            if tried == MAX_ATTEMPTS:
                raise
            route = admission.refreshed(route)
        finally:
            admission.release(slot)
    raise AssertionError("the last attempt's failure is raised")


async def _acquire(
    admission: Admission,
    route: EndpointRoute,
    entity: str | None,
    deadline: float,
    timeout_s: float,
) -> Slot:
    try:
        with stages.stage("queue_wait"):
            async with asyncio.timeout(max(deadline - time.perf_counter(), 0.001)):
                return await admission.acquire(route, entity)
    except TimeoutError as exc:
        raise DeadlineExceeded(
            f"No replica of '{route.name}' became free within {timeout_s:.0f}s."
        ) from exc
