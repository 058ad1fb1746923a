"""The demand of every gateway process, summed for the autoscaler.

The server's own gateway is read in place; gateways in other processes post reports, which
count until they are ``stale_s`` old (a gateway that stopped reporting has stopped serving).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from berth.core.load import EntityKey, EntityLoad, LoadReport

LocalLoad = Callable[[], LoadReport]


@dataclass(frozen=True, slots=True)
class _Received:
    at: float
    report: LoadReport


class LoadBoard:
    def __init__(
        self,
        local: LocalLoad | None = None,
        stale_s: float = 5.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._local = local
        self._stale_s = stale_s
        self._now = now
        self._remote: dict[str, _Received] = {}

    def post(self, source: str, report: LoadReport) -> None:
        """The newest report of the gateway process ``source`` (its counters, not deltas)."""
        self._remote[source] = _Received(self._now(), report)

    def read(self) -> dict[EntityKey, EntityLoad]:
        now = self._now()
        self._remote = {s: r for s, r in self._remote.items() if now - r.at <= self._stale_s}
        reports = [r.report for r in self._remote.values()]
        if self._local is not None:
            reports.append(self._local())
        total: dict[EntityKey, EntityLoad] = {}
        for report in reports:
            for key, load in report.items():
                total[key] = total[key] + load if key in total else load
        return total
