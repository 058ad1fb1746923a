"""Rate-limit buckets shared by every gateway process through one Redis server.

The decision is the one ``limits`` describes, made inside Redis by a Lua script per operation,
so checking and charging all of a request's buckets is one atomic step across processes.

- **Redis's clock.** Scripts read ``TIME`` on the server: every process measures the window on
  one clock, so skew between gateway hosts can neither stretch nor shrink it. Times are whole
  milliseconds, which Lua's numbers (printed with 14 significant digits when passed to Redis)
  carry exactly.
- **Keys.** A bucket is a sorted set ``<prefix>w:<key>`` (request id → admission time) and,
  when it has a token limit, a hash ``<prefix>t:<key>`` (request id → tokens, plus ``sum``;
  ids are hex, so none is named ``sum``). Each admission sets both to expire when its entry
  leaves the window, so an idle bucket disappears by itself.
- **Retries.** A command is retried once, on a fresh connection, when the connection failed
  (a pooled one Redis closed, a restarted server). An admission that ran but whose answer was
  lost finds its own id and is not charged twice; a settlement sets an absolute value.
- **Redis unreachable: fail open.** Admissions are granted unchecked (no quota figures) and
  settlements dropped, with one warning when Redis goes and one line when it is back. The
  limits protect budgets and fairness over minutes; replicas are protected from overload by
  the gateway's own admission queue either way. Failing closed would turn an outage of this
  auxiliary store into an outage of every rate-limited endpoint.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, TimeoutError

from berth.gateway.limits import WALK_LIMIT, Bucket, Grant, Held, Refusal, outcome, request_ids

log = logging.getLogger(__name__)

ADMIT = """
-- KEYS: per bucket, its entries (sorted set) and tokens (hash).
-- ARGV: request id, estimate, then per bucket: calls, tokens (-1: no limit), window in ms.
local id, estimate = ARGV[1], tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local retried = redis.call('ZSCORE', KEYS[1], id) ~= false

local function reset(entries, window)
  local newest = redis.call('ZRANGE', entries, -1, -1, 'WITHSCORES')
  if #newest == 0 then return 0 end
  return tonumber(newest[2]) + window - now
end

local function trim(entries, tokens, cutoff, tracked)
  if tracked then
    local freed = 0
    for _, member in ipairs(redis.call('ZRANGEBYSCORE', entries, '-inf', cutoff)) do
      freed = freed + (tonumber(redis.call('HGET', tokens, member)) or 0)
      redis.call('HDEL', tokens, member)
    end
    if freed ~= 0 then redis.call('HINCRBY', tokens, 'sum', -freed) end
  end
  redis.call('ZREMRANGEBYSCORE', entries, '-inf', cutoff)
end

local function token_wait(entries, tokens, excess, window)
  local oldest = redis.call('ZRANGE', entries, 0, $WALK_LIMIT - 1, 'WITHSCORES')
  local freed = 0
  for j = 1, #oldest, 2 do
    freed = freed + (tonumber(redis.call('HGET', tokens, oldest[j])) or 0)
    if freed >= excess then return tonumber(oldest[j + 1]) + window - now end
  end
  return reset(entries, window)
end

local function wait(entries, tokens, calls, limit, window, count, used)
  if calls == 0 or (limit >= 0 and estimate > limit) then return -1 end
  local w = 0
  if calls > 0 and count >= calls then
    local nth = redis.call('ZRANGE', entries, count - calls, count - calls, 'WITHSCORES')
    w = tonumber(nth[2]) + window - now
  end
  if limit >= 0 and used + estimate > limit then
    w = math.max(w, token_wait(entries, tokens, used + estimate - limit, window))
  end
  return w
end

local n = #KEYS / 2
local state, fits = {}, true
for i = 1, n do
  local entries, tokens = KEYS[2 * i - 1], KEYS[2 * i]
  local calls, limit = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local window = tonumber(ARGV[3 * i + 2])
  trim(entries, tokens, now - window, limit >= 0)
  local count, used = redis.call('ZCARD', entries), 0
  if limit >= 0 then used = tonumber(redis.call('HGET', tokens, 'sum')) or 0 end
  local w = 0
  if not retried then w = wait(entries, tokens, calls, limit, window, count, used) end
  fits = fits and w == 0
  state[i] = {count, used, w, reset(entries, window)}
end

if fits and not retried then
  for i = 1, n do
    local entries, tokens = KEYS[2 * i - 1], KEYS[2 * i]
    local limit, window = tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
    redis.call('ZADD', entries, now, id)
    redis.call('PEXPIRE', entries, window)
    state[i][1] = state[i][1] + 1
    if limit >= 0 then
      redis.call('HSET', tokens, id, estimate)
      redis.call('HINCRBY', tokens, 'sum', estimate)
      redis.call('PEXPIRE', tokens, window)
      state[i][2] = state[i][2] + estimate
    end
    state[i][4] = window
  end
end

local reply = {fits and 1 or 0}
for i = 1, n do
  for _, v in ipairs(state[i]) do reply[#reply + 1] = v end
end
return reply
""".replace("$WALK_LIMIT", str(WALK_LIMIT))

SETTLE = """
-- KEYS: the token hashes of the grant's buckets. ARGV: request id, tokens used.
for _, tokens in ipairs(KEYS) do
  local old = redis.call('HGET', tokens, ARGV[1])
  if old then
    redis.call('HSET', tokens, ARGV[1], ARGV[2])
    redis.call('HINCRBY', tokens, 'sum', tonumber(ARGV[2]) - tonumber(old))
  end
end
return 0
"""


class RedisLimiter:
    """Buckets in Redis at ``url``: exact across every process that shares the server."""

    def __init__(self, url: str, *, prefix: str = "berth:rl:", timeout_s: float = 0.5) -> None:
        self._client = Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), retries=1),
        )
        self._admit = self._client.register_script(ADMIT)
        self._settle = self._client.register_script(SETTLE)
        self._prefix = prefix
        self._ids = request_ids()
        self._unreachable = False

    async def admit(self, buckets: Sequence[Bucket], estimate: int = 0) -> Grant | Refusal:
        request_id = next(self._ids)
        if not buckets:
            return Grant(request_id, (), estimate, None, None)
        keys = [k for b in buckets for k in (self._entries(b), self._tokens(b))]
        args: list[int | str] = [request_id, estimate]
        for b in buckets:
            args += [_or_none(b.calls), _or_none(b.tokens), math.ceil(b.window_s * 1000)]
        try:
            reply = await self._admit(keys=keys, args=args)
        except (ConnectionError, TimeoutError) as exc:
            self._went_away(exc)
            return Grant(request_id, tuple(buckets), estimate, None, None)
        self._came_back()
        admitted, *figures = (int(v) for v in reply)
        held = [_held(*figures[i : i + 4]) for i in range(0, len(figures), 4)]
        return outcome(request_id, buckets, held, estimate, admitted == 1)

    async def settle(self, grant: Grant, used: int) -> None:
        keys = [self._tokens(b) for b in grant.buckets if b.tokens is not None]
        if not keys:
            return
        try:
            await self._settle(keys=keys, args=[grant.request_id, used])
        except (ConnectionError, TimeoutError) as exc:
            self._went_away(exc)
            return
        self._came_back()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _entries(self, bucket: Bucket) -> str:
        return f"{self._prefix}w:{bucket.key}"

    def _tokens(self, bucket: Bucket) -> str:
        return f"{self._prefix}t:{bucket.key}"

    def _went_away(self, exc: Exception) -> None:
        if not self._unreachable:
            self._unreachable = True
            log.warning(
                "Redis for rate limits is unreachable (%s); admitting requests without "
                "rate limits until it answers again.",
                exc,
            )

    def _came_back(self) -> None:
        if self._unreachable:
            self._unreachable = False
            log.info("Redis for rate limits answers again; rate limits are enforced.")


def _held(calls: int, tokens: int, wait_ms: int, reset_ms: int) -> Held:
    return Held(calls, tokens, None if wait_ms < 0 else wait_ms / 1000, reset_ms / 1000)


def _or_none(limit: int | None) -> int:
    """Lua cannot carry nil in ARGV: -1 stands for no limit."""
    return -1 if limit is None else limit
