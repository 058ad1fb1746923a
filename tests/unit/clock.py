"""A clock for tests whose readings are predictable."""

from __future__ import annotations


class StepClock:
    """Each reading is one millisecond after the last."""

    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def now_ms(self) -> int:
        self.now += 1
        return self.now
