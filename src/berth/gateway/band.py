"""Provisioned throughput on the data plane: a request for an open LLM served with a band of
tokens per second reserves its tokens against the band before it may take a replica slot.

- **A token bucket per served entity.** It fills at the band's current rate,
  ``ProvisionedBand.current(routed replicas)`` tokens/s (an entity starting from zero counts
  the replica coming; the band never drops below its minimum), and holds at most ``BURST_S``
  seconds of it. A request reserves its estimate (``token_estimate``: prompt bytes / 3 plus
  ``max_tokens``, 512 when the body sets none) and fits when the bucket holds it, or when the
  bucket is full: an estimate over the bucket's size goes alone, into debt, rather than never.
- **Settled on the real usage.** When the answer ends, the bucket gets back what was reserved
  and not used, or gives up what was used beyond it (`settle`); unlike a sliding window, a
  settlement counts however long the generation took.
- **A FIFO queue past the band.** A request that does not fit waits behind the ones before
  it (a small request never overtakes a large one, which could then starve). The head is
  woken when the bucket will hold it (a timer), when a settlement gives tokens back, or when
  new routes change the band (a replica more: a larger band at once).
- **Bounded in time.** A request is refused with 429 ``REQUEST_LIMIT_EXCEEDED`` when the
  estimates queued before it and its own would take more than ``max_wait_s`` to be admitted
  at the current rate; ``Retry-After`` is what the queue before it needs to drain. What waits
  counts as demand for the autoscaler (`load`), which adds replicas, and with them band, up
  to the maximum.

The buckets are this process's: gateway workers each admit against the whole band.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from berth.core.dataplane import EntityRoute, ProvisionedBand, Snapshot
from berth.core.errors import RateLimited
from berth.core.load import EntityKey

BURST_S = 1.0
"""The bucket holds this many seconds of the band: what a burst may take at once."""
_EPSILON = 1e-6
"""A timer that fires when the bucket should hold the head's tokens finds them there, float
arithmetic notwithstanding."""


class _Band:
    """One entity's bucket, in tokens, and the requests queued for it."""

    __slots__ = ("band", "replicas", "level", "at", "queue", "queued", "timer", "used_s")

    def __init__(self, band: ProvisionedBand, replicas: int, now: float) -> None:
        self.band = band
        self.replicas = replicas
        self.level = self.capacity
        self.at = now
        self.queue: deque[tuple[asyncio.Future[None], int]] = deque()
        self.queued = 0
        """Tokens the queued requests reserve."""
        self.timer: asyncio.TimerHandle | None = None
        self.used_s = 0.0
        """Tokens settled, over the chunk: the load report's ``band_s``."""

    @property
    def rate(self) -> float:
        """Tokens per second now; an entity starting from zero counts the replica coming."""
        return float(max(self.band.current(max(self.replicas, 1)), 1))

    @property
    def capacity(self) -> float:
        return self.rate * BURST_S

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now

    def fits(self, tokens: int) -> bool:
        return self.level + _EPSILON >= min(tokens, self.capacity)

    def wait_s(self, tokens: int) -> float:
        """Until the bucket holds ``tokens`` after what is queued (refills only)."""
        return max(0.0, (self.queued + min(tokens, self.capacity) - self.level) / self.rate)

    def resize(self, band: ProvisionedBand, replicas: int, now: float) -> None:
        """New routes: the tokens so far at the old rate, the rest at the new one."""
        self.refill(now)
        self.band, self.replicas = band, replicas
        self.level = min(self.level, self.capacity)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Tokens one request holds of its entity's band until it is settled."""

    band: _Band
    tokens: int


class Bands:
    """The provisioned bands of every served entity with one, in this process."""

    def __init__(self, max_wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_wait_s = max_wait_s
        self._clock = clock
        self._bands: dict[EntityKey, _Band] = {}

    async def reserve(self, endpoint: str, entity: EntityRoute, tokens: int) -> Reservation:
        """``tokens`` of ``entity``'s band, at once or after the requests queued before; 429
        when the queue would hold the request longer than ``max_wait_s``."""
        assert entity.provisioned is not None
        band = self._band(endpoint, entity)
        band.refill(self._clock())
        if not band.queue and band.fits(tokens):
            band.level -= tokens
            return Reservation(band, tokens)
        wait_s = band.wait_s(tokens)
        if wait_s > self._max_wait_s:
            drain_s = max(0.0, (band.queued - band.level) / band.rate)
            raise RateLimited(
                f"Served entity '{entity.name}' of endpoint '{endpoint}' is at its provisioned "
                f"throughput of {band.rate:.0f} tokens/s and the requests queued for it would "
                f"hold this one over {self._max_wait_s:g} s; retry later, or send fewer "
                "tokens (prompt and max_tokens) at once.",
                retry_after=max(1, math.ceil(drain_s)),
            )
        waiter = asyncio.get_running_loop().create_future()
        band.queue.append((waiter, tokens))
        band.queued += tokens
        self._pump(band)
        try:
            await waiter
        except BaseException:
            self._give_up(band, waiter, tokens)
            raise
        return Reservation(band, tokens)

    def settle(self, reservation: Reservation, used: int) -> None:
        """The request is over and used ``used`` tokens (prompt and completion)."""
        band = reservation.band
        band.refill(self._clock())
        band.level = min(band.capacity, band.level + reservation.tokens - used)
        band.used_s += used / band.band.chunk_tps
        self._pump(band)

    def routes_changed(self, snapshot: Snapshot) -> None:
        """Bands follow the routed replicas; an entity that is gone or no longer provisioned
        lets its queue through (its requests go where the new routes send them)."""
        now = self._clock()
        for key, band in list(self._bands.items()):
            entity = _entity(snapshot, key)
            if entity is None or entity.provisioned is None:
                del self._bands[key]
                self._release(band)
                continue
            band.resize(entity.provisioned, len(entity.replicas), now)
            self._pump(band)

    def waiting(self, endpoint: str, entity: str) -> int:
        band = self._bands.get((endpoint, entity))
        return len(band.queue) if band is not None else 0

    def load(self) -> dict[EntityKey, tuple[float, float]]:
        """(``band_s``, ``band_queued_s``) of `EntityLoad` per entity with a band."""
        return {
            key: (band.used_s, band.queued / band.band.chunk_tps)
            for key, band in self._bands.items()
        }

    def _band(self, endpoint: str, entity: EntityRoute) -> _Band:
        assert entity.provisioned is not None
        band = self._bands.get((endpoint, entity.name))
        if band is None:
            band = _Band(entity.provisioned, len(entity.replicas), self._clock())
            self._bands[(endpoint, entity.name)] = band
        return band

    def _pump(self, band: _Band) -> None:
        """Admit queued requests in order while they fit; time a wake-up for the head."""
        if band.timer is not None:
            band.timer.cancel()
            band.timer = None
        band.refill(self._clock())
        while band.queue:
            waiter, tokens = band.queue[0]
            if waiter.done():  # cancelled; its task has not run its cleanup yet
                band.queue.popleft()
                band.queued -= tokens
                continue
            if not band.fits(tokens):
                wait_s = (min(tokens, band.capacity) - band.level) / band.rate
                loop = asyncio.get_running_loop()
                band.timer = loop.call_later(wait_s, self._pump, band)
                return
            band.queue.popleft()
            band.queued -= tokens
            band.level -= tokens
            waiter.set_result(None)

    def _give_up(self, band: _Band, waiter: asyncio.Future[None], tokens: int) -> None:
        """A queued request left (cancelled, timed out): out of the queue, or, if it was
        admitted meanwhile, its tokens back."""
        if (waiter, tokens) in band.queue:
            band.queue.remove((waiter, tokens))
            band.queued -= tokens
        elif not waiter.cancelled():
            band.level = min(band.capacity, band.level + tokens)
        self._pump(band)

    def _release(self, band: _Band) -> None:
        if band.timer is not None:
            band.timer.cancel()
        while band.queue:
            waiter, _ = band.queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
        band.queued = 0


def _entity(snapshot: Snapshot, key: EntityKey) -> EntityRoute | None:
    route = snapshot.endpoints.get(key[0])
    if route is None:
        return None
    return next((e for e in route.entities if e.name == key[1]), None)
