"""How busy the rest of the machine is: the cores that processes other than ours (the servers
a benchmark started, and the benchmark itself) used over an interval, from ``/proc/stat`` less
our processes' CPU time. On a small shared machine a neighbour's load changes what a server
measures (llama.cpp's threads wait for each other at every step, so one preempted thread holds
all of them), so the benchmark reports it beside each figure and can wait for a quiet moment.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

from . import procs

_TICKS = os.sysconf("SC_CLK_TCK")


def _busy_s() -> float:
    """CPU seconds all cores spent on anything but idle and I/O wait since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / _TICKS


def _own_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Others:
    """Cores used by everything but ``pids``' trees and this process."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids
        self._mark = self._now()

    def _now(self) -> tuple[float, float, float]:
        ours = procs.cpu_seconds(self._pids()) + _own_s()
        return time.monotonic(), _busy_s(), ours

    def start(self) -> None:
        self._mark = self._now()

    def cores(self) -> float:
        """Others' cores since ``start`` (or the last call)."""
        then, busy, ours = self._mark
        self._mark = now = self._now()
        wall = now[0] - then
        return max(0.0, ((now[1] - busy) - (now[2] - ours)) / wall) if wall > 0 else 0.0

    def wait_quiet(
        self, below: float, longest: float, log: Callable[[str], None], window: float = 1.0
    ) -> float:
        """Wait (up to ``longest`` seconds) for a ``window`` in which others used under
        ``below`` cores; returns the last window's figure."""
        deadline = time.monotonic() + longest
        self.start()
        time.sleep(window)
        load = self.cores()
        if load < below:
            return load
        log(f"    others use {load:.2f} cores: waiting up to {longest:.0f} s for < {below}")
        while time.monotonic() < deadline:
            time.sleep(window)
            load = self.cores()
            if load < below:
                break
        return load
