"""Rate limits shared through a real Redis server: exact under concurrency, across OS
processes, with tokens reserved and settled from different processes, and open when Redis is
down."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest
import redis

from berth.gateway.limits import Bucket, Grant, Limiter, LocalLimiter, Refusal
from berth.gateway.limits_redis import RedisLimiter
from tests.support.redis import RedisServer

pytestmark = pytest.mark.integration

CONCURRENCY = 32


async def hammer(limiter: Limiter, bucket: Bucket, attempts: int) -> int:
    """How many of ``attempts`` admissions, made by 32 concurrent tasks, were granted."""
    pending = iter(range(attempts))

    async def client() -> int:
        return sum([isinstance(await limiter.admit([bucket]), Grant) for _ in pending])

    return sum(await asyncio.gather(*(client() for _ in range(CONCURRENCY))))


def _serve(url: str, start: Barrier, conn: Connection) -> None:
    """A RedisLimiter in its own process, running the commands the test sends down a pipe."""
    asyncio.run(_serve_commands(url, start, conn))


async def _serve_commands(url: str, start: Barrier, conn: Connection) -> None:
    limiter = RedisLimiter(url)
    try:
        while (command := conn.recv()) is not None:
            name, *args = command
            if name == "hammer":
                start.wait(timeout=60)  # every worker begins at once, so they contend
                conn.send(await hammer(limiter, *args))
            elif name == "admit":
                conn.send(await limiter.admit(*args))
            else:
                conn.send(await limiter.settle(*args))
    finally:
        await limiter.aclose()


class Worker:
    """Another OS process with its own RedisLimiter, driven over a pipe."""

    def __init__(self, url: str, start: Barrier) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._proc = context.Process(target=_serve, args=(url, start, child))
        self._proc.start()
        child.close()

    def send(self, *command: Any) -> None:
        self._conn.send(command)

    def receive(self) -> Any:
        if not self._conn.poll(60):
            raise TimeoutError("the limiter worker process did not answer within 60 s")
        return self._conn.recv()

    def ask(self, *command: Any) -> Any:
        self.send(*command)
        return self.receive()

    def close(self) -> None:
        self._conn.send(None)
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(10)
        self._conn.close()


@pytest.fixture
def workers(redis_server: RedisServer) -> Iterator[tuple[Worker, Worker]]:
    start = multiprocessing.get_context("spawn").Barrier(2)
    pair = Worker(redis_server.url, start), Worker(redis_server.url, start)
    yield pair
    for worker in pair:
        worker.close()


@pytest.fixture(params=["local", "redis"])
def make_limiter(request: pytest.FixtureRequest) -> Callable[[], Limiter]:
    """Both limiters, built inside the test's event loop (a Redis client belongs to one)."""
    if request.param == "local":
        return LocalLimiter
    url = request.getfixturevalue("redis_server").url
    return lambda: RedisLimiter(url)


def unique(name: str) -> str:
    """A bucket key no other test (or earlier run against the same server) has touched."""
    return f"test:{name}:{uuid.uuid4().hex}"


def test_exactly_the_limit_of_300_concurrent_admissions_gets_through(
    make_limiter: Callable[[], Limiter],
) -> None:
    async def scenario() -> int:
        limiter = make_limiter()
        try:
            return await hammer(limiter, Bucket(unique("hammer"), calls=100), 300)
        finally:
            await limiter.aclose()

    assert asyncio.run(scenario()) == 100


def test_two_processes_sharing_redis_admit_exactly_the_limit_between_them(
    workers: tuple[Worker, Worker],
) -> None:
    bucket = Bucket(unique("two-processes"), calls=100)
    for worker in workers:
        worker.send("hammer", bucket, 150)
    admitted = [worker.receive() for worker in workers]
    assert sum(admitted) == 100, admitted


def test_tokens_reserved_and_settled_in_one_process_bind_another(
    redis_server: RedisServer, workers: tuple[Worker, Worker]
) -> None:
    other = workers[0]
    bucket = Bucket(unique("tokens"), tokens=1000, label="the endpoint")

    async def scenario() -> None:
        limiter = RedisLimiter(redis_server.url)
        try:
            reserved = other.ask("admit", [bucket], 600)
            assert isinstance(reserved, Grant)
            refusal = await limiter.admit([bucket], 600)
            assert isinstance(refusal, Refusal) and refusal.retry_after == 60
            assert "600 in use and this request reserves 600" in refusal.message
            other.ask("settle", reserved, 100)  # it used less than it reserved
            mine = await limiter.admit([bucket], 600)
            assert isinstance(mine, Grant)
            assert mine.tokens is not None and mine.tokens.remaining == 300
            assert isinstance(other.ask("admit", [bucket], 300), Grant)
            await limiter.settle(mine, 900)  # and this one more
            over = other.ask("admit", [bucket], 1)
            assert isinstance(over, Refusal)
            assert over.tokens is not None and over.tokens.remaining == 0
        finally:
            await limiter.aclose()

    asyncio.run(scenario())


def test_both_limiters_answer_alike(make_limiter: Callable[[], Limiter]) -> None:
    calls, tokens = Bucket(unique("calls"), calls=2), Bucket(unique("tokens"), tokens=50)

    async def scenario() -> None:
        limiter = make_limiter()
        try:
            first = await limiter.admit([calls, tokens], 10)
            assert isinstance(first, Grant) and first.requests is not None
            assert (first.requests.limit, first.requests.remaining) == (2, 1)
            assert first.tokens is not None and first.tokens.remaining == 40
            assert isinstance(await limiter.admit([calls], 0), Grant)
            refusal = await limiter.admit([tokens, calls], 10)
            assert isinstance(refusal, Refusal) and refusal.bucket == calls
            assert refusal.retry_after_s is not None and 59 < refusal.retry_after_s <= 60
            too_big = await limiter.admit([tokens], 51)
            assert isinstance(too_big, Refusal) and too_big.retry_after_s is None
            rest = await limiter.admit([tokens], 40)  # the refusals charged nothing
            assert isinstance(rest, Grant) and rest.tokens is not None
            assert rest.tokens.remaining == 0
        finally:
            await limiter.aclose()

    asyncio.run(scenario())


def test_calls_leave_the_window_when_redis_time_says(redis_server: RedisServer) -> None:
    bucket = Bucket(unique("window"), calls=2, window_s=1.0)

    async def scenario() -> None:
        limiter = RedisLimiter(redis_server.url)
        try:
            assert isinstance(await limiter.admit([bucket]), Grant)
            # A second call later in the window: the bucket's keys live on past the first's
            # expiry, so only the script's trimming can let the first one go.
            await asyncio.sleep(0.3)
            assert isinstance(await limiter.admit([bucket]), Grant)
            asked = time.monotonic()
            refusal = await limiter.admit([bucket])
            assert isinstance(refusal, Refusal) and refusal.retry_after_s is not None
            assert 0 < refusal.retry_after_s <= 0.7
            for _ in range(300):
                if isinstance(await limiter.admit([bucket]), Grant):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the first call never left its 1 s window")
            # Not admitted early (Redis counts whole milliseconds: allow one either way) ...
            assert time.monotonic() - asked >= refusal.retry_after_s - 0.002
            again = await limiter.admit([bucket])
            assert isinstance(again, Refusal) and again.retry_after_s is not None
            # ... nor late: a client that waits what it was told is admitted.
            await asyncio.sleep(again.retry_after_s + 0.002)
            assert isinstance(await limiter.admit([bucket]), Grant)
        finally:
            await limiter.aclose()

    asyncio.run(scenario())


def test_bucket_keys_expire_with_their_window(redis_server: RedisServer) -> None:
    key = unique("expiry")

    async def scenario() -> None:
        limiter = RedisLimiter(redis_server.url, prefix="expiry:")
        try:
            assert isinstance(await limiter.admit([Bucket(key, calls=5, tokens=10)], 3), Grant)
        finally:
            await limiter.aclose()

    asyncio.run(scenario())
    with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
        assert sorted(client.keys(f"expiry:*{key}")) == [f"expiry:{k}:{key}".encode() for k in "tw"]
        for kind in "tw":
            assert 0 < client.pttl(f"expiry:{kind}:{key}") <= 60_000


def test_redis_down_fails_open_with_one_warning_and_limits_return_with_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path / "redis").start()
    bucket = Bucket("ep:down", calls=1, tokens=100)

    async def scenario() -> None:
        limiter = RedisLimiter(server.url)
        try:
            assert isinstance(await limiter.admit([bucket]), Grant)
            server.stop()
            for _ in range(3):
                unchecked = await limiter.admit([bucket], 5)
                assert isinstance(unchecked, Grant) and unchecked.requests is None
            await limiter.settle(unchecked, 5)
            server.start()  # same port, empty: nothing was persisted
            enforced = await limiter.admit([bucket])
            assert isinstance(enforced, Grant) and enforced.requests is not None
            assert isinstance(await limiter.admit([bucket]), Refusal)
        finally:
            await limiter.aclose()

    try:
        with caplog.at_level(logging.INFO, logger="berth.gateway.limits_redis"):
            asyncio.run(scenario())
    finally:
        server.stop()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert "unreachable" in messages[0] and "without rate limits" in messages[0]
    assert "answers again" in messages[1]
