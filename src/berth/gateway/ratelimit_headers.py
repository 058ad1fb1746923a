"""Rate-limit answers: OpenAI's ``x-ratelimit-*`` headers, and the 429 that carries them."""

from __future__ import annotations

import math

from berth.core.errors import RateLimited
from berth.gateway.limits import Quota, Refusal


def quota_headers(requests: Quota | None, tokens: Quota | None) -> list[tuple[bytes, bytes]]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` for the limits that apply."""
    headers: list[tuple[bytes, bytes]] = []
    for kind, quota in (("requests", requests), ("tokens", tokens)):
        if quota is not None:
            headers += [
                (f"x-ratelimit-limit-{kind}".encode(), str(quota.limit).encode()),
                (f"x-ratelimit-remaining-{kind}".encode(), str(quota.remaining).encode()),
                (f"x-ratelimit-reset-{kind}".encode(), f"{math.ceil(quota.reset_s)}s".encode()),
            ]
    return headers


class LimitExceeded(RateLimited):
    """429 ``REQUEST_LIMIT_EXCEEDED`` with ``Retry-After`` and the quota headers."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message, retry_after=refusal.retry_after)
        self._refusal = refusal

    def quota_headers(self) -> list[tuple[bytes, bytes]]:
        return quota_headers(self._refusal.requests, self._refusal.tokens)
