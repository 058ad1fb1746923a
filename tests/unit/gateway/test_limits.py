"""Rate limits: which buckets a caller is charged to, and the in-process limiter on fake time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from berth.core.errors import RateLimited
from berth.core.principal import Principal, PrincipalKind
from berth.gateway.limits import Bucket, Grant, LocalLimiter, Refusal, buckets_for

ALICE = Principal("alice", PrincipalKind.USER, frozenset({"ml", "eng"}))
BOB = Principal("bob", PrincipalKind.USER, frozenset({"ml"}))
ROBOT = Principal("robot", PrincipalKind.SERVICE_PRINCIPAL, frozenset({"eng"}))


def keys(rules: Sequence[dict[str, Any]], caller: Principal) -> dict[str, tuple[Any, ...]]:
    minute = [{"renewal_period": "minute", **rule} for rule in rules]
    return {b.key: (b.calls, b.tokens) for b in buckets_for(minute, "e1", caller)}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admit(limiter: LocalLimiter, buckets: Sequence[Bucket], estimate: int = 0) -> Grant | Refusal:
    return asyncio.run(limiter.admit(buckets, estimate))


def granted(limiter: LocalLimiter, buckets: Sequence[Bucket], estimate: int = 0) -> Grant:
    decision = admit(limiter, buckets, estimate)
    assert isinstance(decision, Grant), decision
    return decision


def refused(limiter: LocalLimiter, buckets: Sequence[Bucket], estimate: int = 0) -> Refusal:
    decision = admit(limiter, buckets, estimate)
    assert isinstance(decision, Refusal), decision
    return decision


# --- which buckets -------------------------------------------------------------------------


def test_an_endpoint_rule_is_one_bucket_shared_by_every_caller() -> None:
    rules = [{"key": "endpoint", "calls": 100}]
    assert keys(rules, ALICE) == keys(rules, ROBOT) == {"ep:e1": (100, None)}


def test_a_rule_without_key_applies_to_the_endpoint() -> None:
    assert keys([{"calls": 5}], BOB) == {"ep:e1": (5, None)}


def test_a_user_rule_is_a_bucket_per_user_and_skips_service_principals() -> None:
    rules = [{"key": "user", "calls": 10, "tokens": 500}]
    assert keys(rules, ALICE) == {"ep:e1:user:alice": (10, 500)}
    assert keys(rules, BOB) == {"ep:e1:user:bob": (10, 500)}
    assert keys(rules, ROBOT) == {}


def test_a_named_user_gets_only_their_own_limit_instead_of_the_default() -> None:
    rules = [{"key": "user", "calls": 10}, {"key": "user", "principal": "alice", "calls": 50}]
    assert keys(rules, ALICE) == {"ep:e1:user:alice": (50, None)}
    assert keys(rules, BOB) == {"ep:e1:user:bob": (10, None)}


def test_service_principal_rules_per_principal_and_named() -> None:
    rules = [
        {"key": "service_principal", "calls": 20},
        {"key": "service_principal", "principal": "robot", "tokens": 9000},
    ]
    assert keys(rules, ROBOT) == {"ep:e1:sp:robot": (None, 9000)}
    other = Principal("drone", PrincipalKind.SERVICE_PRINCIPAL)
    assert keys(rules, other) == {"ep:e1:sp:drone": (20, None)}
    assert keys(rules, ALICE) == {}


def test_a_named_user_rule_does_not_match_a_service_principal_of_that_name() -> None:
    namesake = Principal("alice", PrincipalKind.SERVICE_PRINCIPAL)
    assert keys([{"key": "user", "principal": "alice", "calls": 1}], namesake) == {}


def test_a_named_group_is_one_bucket_for_its_members_only() -> None:
    rules = [{"key": "user_group", "principal": "ml", "calls": 30}]
    assert keys(rules, ALICE) == keys(rules, BOB) == {"ep:e1:group:ml": (30, None)}
    assert keys(rules, ROBOT) == {}


def test_a_group_rule_without_principal_is_a_bucket_per_group_of_the_caller() -> None:
    rules = [
        {"key": "user_group", "calls": 30},
        {"key": "user_group", "principal": "ml", "calls": 300},
    ]
    assert keys(rules, ALICE) == {"ep:e1:group:eng": (30, None), "ep:e1:group:ml": (300, None)}
    assert keys(rules, ROBOT) == {"ep:e1:group:eng": (30, None)}


def test_rules_landing_on_one_bucket_combine_the_tighter_limits() -> None:
    rules = [
        {"key": "endpoint", "calls": 100},
        {"key": "endpoint", "calls": 60, "tokens": 8000},
        {"key": "endpoint", "tokens": 9000},
    ]
    assert keys(rules, BOB) == {"ep:e1": (60, 8000)}


def test_every_applicable_rule_adds_its_bucket_and_a_rule_without_limits_adds_none() -> None:
    rules = [
        {"key": "endpoint", "calls": 1000},
        {"key": "user", "calls": 10},
        {"key": "user_group", "principal": "ml", "tokens": 100},
        {"key": "service_principal"},
    ]
    assert keys(rules, BOB) == {
        "ep:e1": (1000, None),
        "ep:e1:user:bob": (10, None),
        "ep:e1:group:ml": (None, 100),
    }
    assert keys(rules, ROBOT) == {"ep:e1": (1000, None)}


# --- the in-process limiter ----------------------------------------------------------------


def test_calls_slide_out_of_the_window_and_retry_after_says_when() -> None:
    clock = FakeClock()
    limiter, bucket = LocalLimiter(clock), Bucket("b", calls=3, label="user 'bob'")
    for offset in (0, 10, 20):
        clock.now = 1000 + offset
        granted(limiter, [bucket])
    clock.now = 1030
    refusal = refused(limiter, [bucket])
    assert (refusal.retry_after_s, refusal.retry_after) == (30, 30)
    assert (
        refusal.message == "Rate limit reached for user 'bob': 3 calls per minute. Retry in 30 s."
    )
    assert refusal.requests is not None and refusal.requests.remaining == 0
    error = refusal.error()
    assert isinstance(error, RateLimited) and error.retry_after == 30
    clock.now = 1060  # the first call leaves the window exactly now
    grant = granted(limiter, [bucket])
    assert grant.requests is not None and (grant.requests.limit, grant.requests.remaining) == (3, 0)
    clock.now = 1060.5
    assert refused(limiter, [bucket]).retry_after_s == pytest.approx(9.5)
    assert refused(limiter, [bucket]).retry_after == 10


def test_a_request_refused_by_one_bucket_is_charged_to_none() -> None:
    clock = FakeClock()
    limiter = LocalLimiter(clock)
    tight, loose = Bucket("tight", calls=1), Bucket("loose", calls=5, tokens=1000)
    granted(limiter, [tight, loose], 100)
    clock.now += 5
    refusal = refused(limiter, [loose, tight], 100)
    assert refusal.bucket == tight and refusal.retry_after_s == 55
    for _ in range(4):
        grant = granted(limiter, [loose], 100)
    assert grant.tokens is not None and grant.tokens.remaining == 500
    assert refused(limiter, [loose]).bucket == loose


def test_the_longest_wait_among_refusing_buckets_is_reported() -> None:
    clock = FakeClock()
    limiter = LocalLimiter(clock)
    early, late = Bucket("early", calls=1), Bucket("late", calls=1)
    granted(limiter, [early])
    clock.now += 20
    granted(limiter, [late])
    refusal = refused(limiter, [early, late])
    assert (refusal.bucket, refusal.retry_after_s) == (late, 60)


def test_tokens_are_reserved_then_settled_down_and_up() -> None:
    clock = FakeClock()
    limiter, bucket = LocalLimiter(clock), Bucket("b", tokens=1000, label="the endpoint")
    first = granted(limiter, [bucket], 600)
    clock.now += 15
    refusal = refused(limiter, [bucket], 600)
    assert refusal.retry_after_s == 45
    assert "1000 tokens per minute, 600 in use and this request reserves 600" in refusal.message
    asyncio.run(limiter.settle(first, 100))
    second = granted(limiter, [bucket], 600)
    assert second.tokens is not None and second.tokens.remaining == 300
    asyncio.run(limiter.settle(second, 900))  # used more than reserved: counted in full
    over = refused(limiter, [bucket], 1)
    assert over.tokens is not None and over.tokens.remaining == 0
    assert over.retry_after_s == 45  # the first request (100) frees enough when it leaves
    clock.now += 45
    granted(limiter, [bucket], 1)


def test_a_failed_request_settles_to_nothing() -> None:
    limiter, bucket = LocalLimiter(FakeClock()), Bucket("b", tokens=100)
    grant = granted(limiter, [bucket], 100)
    asyncio.run(limiter.settle(grant, 0))
    granted(limiter, [bucket], 100)


def test_an_estimate_above_the_limit_is_refused_for_good() -> None:
    limiter, bucket = LocalLimiter(FakeClock()), Bucket("b", tokens=1000, label="user 'bob'")
    refusal = refused(limiter, [bucket], 1001)
    assert refusal.retry_after_s is None and refusal.retry_after is None
    assert "estimate of 1001 tokens" in refusal.message and "exceeds the limit of 1000" in (
        refusal.message
    )
    assert refusal.error().retry_after is None
    granted(limiter, [bucket], 1000)


def test_a_limit_of_zero_calls_refuses_everything() -> None:
    refusal = refused(LocalLimiter(FakeClock()), [Bucket("b", calls=0, label="group 'ml'")])
    assert refusal.retry_after is None and "no calls for group 'ml'" in refusal.message


def test_settling_after_the_window_changes_nothing() -> None:
    clock = FakeClock()
    limiter, bucket = LocalLimiter(clock), Bucket("b", tokens=1000)
    grant = granted(limiter, [bucket], 500)
    clock.now += 61
    granted(limiter, [Bucket("other", calls=1)])  # idle buckets are forgotten meanwhile
    asyncio.run(limiter.settle(grant, 5000))
    granted(limiter, [bucket], 1000)


def test_a_token_refusal_behind_many_entries_still_says_when_it_fits() -> None:
    clock = FakeClock()
    limiter, bucket = LocalLimiter(clock), Bucket("b", tokens=100_000)
    for _ in range(1000):  # more entries than a refusal walks
        granted(limiter, [bucket], 0)
    clock.now += 1
    granted(limiter, [bucket], 100_000)
    clock.now += 1
    assert refused(limiter, [bucket], 1).retry_after_s == 59
