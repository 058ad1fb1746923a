"""Per-minute rate limits: the buckets a request is charged to, and an exact in-process limiter.

An endpoint's rules (``{"calls"?, "tokens"?, "key", "principal"?, "renewal_period"}``) become,
for one caller, a few **buckets** (``buckets_for``, pure). A ``Limiter`` admits a request
against all of them at once or refuses it, naming the bucket that refused and when it will fit.
``LocalLimiter`` keeps the buckets in this process; ``limits_redis.RedisLimiter`` keeps them in
Redis, shared by every gateway process. Both decide the same way:

- **Exact sliding window.** Each bucket holds one entry per admitted request of the trailing
  window (admission time, request id, reserved or settled tokens). A request fits when the
  bucket holds fewer than ``calls`` entries and its tokens plus this request's estimate stay
  within ``tokens``. Approximations (fixed windows, two weighted windows) let a burst across
  a boundary through at twice the limit; GCRA is exact for calls but cannot re-price a past
  request, which token settlement needs. Per-request entries cost memory linear in the
  requests admitted per window, and a calls limit caps that at ``calls``: fine for the
  hundreds to tens of thousands per minute berth's limits are set to.
- **Bounded work.** Entries are kept oldest first and dropped as they leave the window, each
  once, so an admission costs amortised O(log n). A running token sum avoids summing the
  window. Only a token refusal walks entries (to say when enough tokens free up), and it stops
  after ``WALK_LIMIT`` of them, answering the time the whole window clears instead: later,
  never wrong.
- **All or nothing.** Every bucket is checked before any is charged, so a refusal leaves no
  trace and a refused request costs nobody's quota.
- **Reserve, then settle.** Admission reserves the caller's estimate (prompt estimate plus
  ``max_tokens``); ``settle`` replaces it with the tokens really used, up or down, so a burst
  overshoots a token limit by at most one request's ``max_tokens``. An entry keeps its
  admission time: a request settled after its entry left the window changes nothing.
"""

from __future__ import annotations

import itertools
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from berth.core.errors import RateLimited
from berth.core.principal import Principal, PrincipalKind

WINDOWS_S = {"minute": 60.0}
"""``renewal_period`` → window length; Databricks defines only ``minute``."""
WALK_LIMIT = 256
"""Most entries a token refusal looks at to say when enough tokens free up."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """One counter a request is charged to; requests with the same ``key`` share it."""

    key: str
    calls: int | None = None
    tokens: int | None = None
    window_s: float = 60.0
    label: str = ""
    """Whom the limit applies to, for messages: ``the endpoint``, ``user 'alice'``."""

    @property
    def per_window(self) -> str:
        return "per minute" if self.window_s == 60 else f"per {self.window_s:g} s"


@dataclass(frozen=True, slots=True)
class Quota:
    """The figures of OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``."""

    limit: int
    remaining: int
    reset_s: float
    """Until every entry now in the window has left it (the bucket is back to empty)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """An admitted request; hand it back to ``settle`` when the request ends."""

    request_id: str
    buckets: tuple[Bucket, ...]
    reserved: int
    requests: Quota | None
    """The tightest calls limit after this request, or None when none applies (or is known)."""
    tokens: Quota | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused request: which bucket refused, why, and when the request would fit."""

    bucket: Bucket
    message: str
    retry_after_s: float | None
    """None when waiting cannot help: the estimate alone is over the limit, or calls is 0."""
    requests: Quota | None
    tokens: Quota | None

    @property
    def retry_after(self) -> int | None:
        """Whole seconds for ``Retry-After``, at least 1."""
        return None if self.retry_after_s is None else _whole_seconds(self.retry_after_s)

    def error(self) -> RateLimited:
        return RateLimited(self.message, retry_after=self.retry_after)


class Limiter(Protocol):
    """What the gateway calls: admit before forwarding, settle when the request ends."""

    async def admit(self, buckets: Sequence[Bucket], estimate: int = 0) -> Grant | Refusal:
        """Charge one call and ``estimate`` tokens to every bucket, or refuse and charge none.

        The buckets' keys are distinct (``buckets_for`` makes them so).
        """
        ...

    async def settle(self, grant: Grant, used: int) -> None:
        """Replace the grant's reserved tokens with ``used`` (>= 0) in its buckets."""
        ...

    async def aclose(self) -> None: ...


def limiter_for(redis_url: str | None) -> Limiter:
    """Counters in Redis when several gateway processes must share them, else in this one."""
    if redis_url:
        from berth.gateway.limits_redis import RedisLimiter  # ~25 MB of imports, when needed

        return RedisLimiter(redis_url)
    return LocalLimiter()


def buckets_for(
    rules: Sequence[Mapping[str, Any]], endpoint_id: str, caller: Principal
) -> tuple[Bucket, ...]:
    """The buckets a request of ``caller`` is charged to under an endpoint's rate limits.

    A rule naming a ``principal`` applies to that user, service principal or group only, and
    for it replaces the rule of the same key without a principal. Rules landing on the same
    bucket combine, the tighter limit winning.
    """
    named = {(rule.get("key"), rule["principal"]) for rule in rules if rule.get("principal")}
    merged: dict[str, Bucket] = {}
    for rule in rules:
        calls, tokens = rule.get("calls"), rule.get("tokens")
        window_s = WINDOWS_S[rule.get("renewal_period", "minute")]
        for key, label in _scopes(rule, endpoint_id, caller, named):
            seen = merged.get(key)
            if seen is not None:
                calls, tokens = _tighter(seen.calls, calls), _tighter(seen.tokens, tokens)
            merged[key] = Bucket(key, calls, tokens, window_s, label)
    return tuple(b for b in merged.values() if b.calls is not None or b.tokens is not None)


def _scopes(
    rule: Mapping[str, Any], endpoint_id: str, caller: Principal, named: set[tuple[Any, Any]]
) -> list[tuple[str, str]]:
    """(bucket key, label) pairs one rule puts ``caller`` in; Databricks' default key is
    ``endpoint``."""
    key, principal = rule.get("key") or "endpoint", rule.get("principal")
    prefix = f"ep:{endpoint_id}"
    if key == "endpoint":
        return [(prefix, "the endpoint")]
    if key == "user_group":
        groups = (
            [principal]
            if principal
            else [g for g in sorted(caller.groups) if (key, g) not in named]
        )
        return [(f"{prefix}:group:{g}", f"group '{g}'") for g in groups if g in caller.groups]
    kind, short, word = {
        "user": (PrincipalKind.USER, "user", "user"),
        "service_principal": (PrincipalKind.SERVICE_PRINCIPAL, "sp", "service principal"),
    }[key]
    if caller.kind != kind or principal not in (None, caller.name):
        return []
    if principal is None and (key, caller.name) in named:
        return []
    return [(f"{prefix}:{short}:{caller.name}", f"{word} '{caller.name}'")]


def _tighter(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def request_ids() -> Iterator[str]:
    """Ids unique across processes (a random prefix per limiter), in lowercase hex."""
    prefix = secrets.token_hex(6)
    return (f"{prefix}{n:x}" for n in itertools.count())


@dataclass(frozen=True, slots=True)
class Held:
    """What one bucket holds after a decision: charged with the request if it was admitted."""

    calls: int
    tokens: int
    wait_s: float | None
    """0 when the request fits this bucket, None when it never will."""
    reset_s: float


def outcome(
    request_id: str, buckets: Sequence[Bucket], held: Sequence[Held], estimate: int, admitted: bool
) -> Grant | Refusal:
    """The answer to an admission, from each bucket's state; shared by both limiters."""
    requests = _tightest(
        [(b.calls, h.calls, h.reset_s) for b, h in zip(buckets, held, strict=True)]
    )
    tokens = _tightest(
        [(b.tokens, h.tokens, h.reset_s) for b, h in zip(buckets, held, strict=True)]
    )
    if admitted:
        return Grant(request_id, tuple(buckets), estimate, requests, tokens)
    refusing = [(b, h) for b, h in zip(buckets, held, strict=True) if h.wait_s != 0]
    bucket, state = max(refusing, key=lambda p: math.inf if p[1].wait_s is None else p[1].wait_s)
    message = _refusal_message(bucket, state, estimate)
    return Refusal(bucket, message, state.wait_s, requests, tokens)


def _tightest(limits: list[tuple[int | None, int, float]]) -> Quota | None:
    quotas = [
        Quota(lim, max(0, lim - used), reset) for lim, used, reset in limits if lim is not None
    ]
    return min(quotas, key=lambda q: q.remaining, default=None)


def _refusal_message(bucket: Bucket, state: Held, estimate: int) -> str:
    if bucket.calls == 0:
        return (
            f"Endpoint rate limits allow no calls for {bucket.label} (0 calls {bucket.per_window})."
        )
    if state.wait_s is None:
        return (
            f"This request's estimate of {estimate} tokens (prompt plus max_tokens) exceeds the "
            f"limit of {bucket.tokens} tokens {bucket.per_window} for {bucket.label}; "
            "lower max_tokens or shorten the prompt."
        )
    head, retry = f"Rate limit reached for {bucket.label}:", _whole_seconds(state.wait_s)
    if bucket.calls is not None and state.calls >= bucket.calls:
        return f"{head} {bucket.calls} calls {bucket.per_window}. Retry in {retry} s."
    return (
        f"{head} {bucket.tokens} tokens {bucket.per_window}, {state.tokens} in use and this "
        f"request reserves {estimate}. Retry in {retry} s."
    )


def _whole_seconds(seconds: float) -> int:
    """At least 1, rounded up past float noise (59.0000001 s is 59)."""
    return max(1, math.ceil(round(seconds, 3)))


class _Window:
    """One bucket's entries in this process, oldest first."""

    __slots__ = ("entries", "tokens", "used", "clears_at")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, str]] = deque()
        self.tokens: dict[str, int] = {}
        """Request id → reserved or settled tokens, kept only for buckets with a token limit."""
        self.used = 0
        self.clears_at = 0.0

    def trim(self, cutoff: float) -> None:
        while self.entries and self.entries[0][0] <= cutoff:
            _, request_id = self.entries.popleft()
            self.used -= self.tokens.pop(request_id, 0)

    def wait(self, bucket: Bucket, now: float, estimate: int) -> float | None:
        if bucket.calls == 0 or (bucket.tokens is not None and estimate > bucket.tokens):
            return None
        wait = 0.0
        if bucket.calls is not None and len(self.entries) >= bucket.calls:
            wait = self.entries[len(self.entries) - bucket.calls][0] + bucket.window_s - now
        excess = self.used + estimate - bucket.tokens if bucket.tokens is not None else 0
        if excess > 0:
            wait = max(wait, self._token_wait(excess, now, bucket.window_s))
        return wait

    def _token_wait(self, excess: int, now: float, window_s: float) -> float:
        freed = 0
        for admitted_at, request_id in islice(self.entries, WALK_LIMIT):
            freed += self.tokens.get(request_id, 0)
            if freed >= excess:
                return admitted_at + window_s - now
        return self.clears_at - now


class LocalLimiter:
    """Buckets in this process: exact for one gateway process (the asyncio loop is the lock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        """Least recently charged first, so idle buckets are found and dropped from the front."""
        self._ids = request_ids()

    async def admit(self, buckets: Sequence[Bucket], estimate: int = 0) -> Grant | Refusal:
        now = self._clock()
        self._drop_idle(now)
        windows = [self._windows.get(b.key) or _Window() for b in buckets]
        for bucket, window in zip(buckets, windows, strict=True):
            window.trim(now - bucket.window_s)
        waits = [w.wait(b, now, estimate) for b, w in zip(buckets, windows, strict=True)]
        admitted = all(wait == 0 for wait in waits)
        request_id = next(self._ids)
        if admitted:
            for bucket, window in zip(buckets, windows, strict=True):
                self._charge(bucket, window, request_id, now, estimate)
        held = [
            Held(len(w.entries), w.used, wait, max(0.0, w.clears_at - now))
            for w, wait in zip(windows, waits, strict=True)
        ]
        return outcome(request_id, buckets, held, estimate, admitted)

    async def settle(self, grant: Grant, used: int) -> None:
        for bucket in grant.buckets:
            window = self._windows.get(bucket.key)
            if window is not None and grant.request_id in window.tokens:
                window.used += used - window.tokens[grant.request_id]
                window.tokens[grant.request_id] = used

    async def aclose(self) -> None:
        self._windows.clear()

    def _charge(
        self, bucket: Bucket, window: _Window, request_id: str, now: float, estimate: int
    ) -> None:
        window.entries.append((now, request_id))
        if bucket.tokens is not None:
            window.tokens[request_id] = estimate
            window.used += estimate
        window.clears_at = now + bucket.window_s
        self._windows[bucket.key] = window
        self._windows.move_to_end(bucket.key)

    def _drop_idle(self, now: float) -> None:
        """Forget buckets whose every entry has left the window, so per-user buckets of callers
        long gone do not pile up."""
        while self._windows:
            key, window = next(iter(self._windows.items()))
            if window.clears_at > now:
                return
            del self._windows[key]
