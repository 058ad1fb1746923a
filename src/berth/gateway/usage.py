"""Usage tracking on the data plane: outcomes summed per minute in memory, drained in batches.

Recording is a dict update on the request path; the server drains the sums into the store
every few seconds, off the request path, so tracking never waits on a database.
"""

from __future__ import annotations

from collections.abc import Callable

from berth.core.usage import Outcome, UsageKey, UsageSum, minute_of

MAX_KEYS = 100_000
"""Past this many distinct keys between drains, new keys are counted as dropped instead."""


class UsageMeter:
    def __init__(self, now_ms: Callable[[], int]) -> None:
        self._now_ms = now_ms
        self._sums: dict[UsageKey, UsageSum] = {}
        self.dropped = 0

    def record(self, outcome: Outcome) -> None:
        key = UsageKey(
            minute_of(self._now_ms()),
            outcome.endpoint,
            outcome.served_entity,
            outcome.principal,
            outcome.status,
        )
        found = self._sums.get(key)
        if found is None:
            if len(self._sums) >= MAX_KEYS:
                self.dropped += 1
                return
            found = self._sums[key] = UsageSum()
        found.add(outcome)

    def drain(self) -> dict[UsageKey, UsageSum]:
        """Everything recorded since the last drain."""
        sums, self._sums = self._sums, {}
        return sums
