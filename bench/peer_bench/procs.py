"""Server processes: starting them in their own session, their process tree, its memory, and
stopping every process of it (SIGTERM, then SIGKILL past a grace period).

A server's tree is every descendant of its first process plus every process still in its
session, so a process that was re-parented to init (Ray's agents) is still found and stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Stat:
    pid: int
    ppid: int
    session: int
    started: int  # clock ticks after boot: a pid is the same process only with the same start
    name: str
    cpu_s: float  # user + system CPU time so far


def _stat(pid: int) -> Stat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    return Stat(pid, int(fields[1]), int(fields[3]), int(fields[19]), name, cpu)


def _all() -> list[Stat]:
    found = (_stat(int(entry)) for entry in os.listdir("/proc") if entry.isdigit())
    return [s for s in found if s is not None]


def tree(pid: int) -> list[Stat]:
    """``pid``, its descendants, and the other processes of its session if it leads one."""
    everything = _all()
    children: dict[int, list[Stat]] = {}
    for stat in everything:
        children.setdefault(stat.ppid, []).append(stat)
    root = next((s for s in everything if s.pid == pid), None)
    if root is None:
        return []
    found = {root.pid: root}
    _descend([root], found, children)
    if root.session == root.pid:
        joined = [s for s in everything if s.session == root.pid and s.pid not in found]
        found.update({s.pid: s for s in joined})
        _descend(joined, found, children)
    return list(found.values())


def _descend(start: list[Stat], found: dict[int, Stat], children: dict[int, list[Stat]]) -> None:
    pending = list(start)
    while pending:
        for child in children.get(pending.pop().pid, []):
            if child.pid not in found:
                found[child.pid] = child
                pending.append(child)


def members(pids: list[int]) -> list[Stat]:
    """The union of the trees of ``pids``."""
    found: dict[int, Stat] = {}
    for pid in pids:
        found.update({s.pid: s for s in tree(pid)})
    return list(found.values())


def cpu_seconds(pids: list[int]) -> float:
    """CPU time used so far by the union of the trees of ``pids``."""
    return sum(s.cpu_s for s in members(pids))


def describe(pid: int) -> str:
    """A short name for a process: its module or script, else its command's name."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    args = [a for a in args if a]
    if not args:
        return "?"
    name = os.path.basename(args[0])
    rest = args[1:]
    if name.startswith("python") and rest:
        if rest[0] == "-m" and len(rest) > 1:
            return " ".join(rest[1:3]) if rest[1] == "berth" else rest[1]
        name = os.path.basename(rest[0])
        rest = rest[1:]
    if name in ("mlflow", "bentoml", "mlserver") and rest:
        return f"{name} {rest[0]}"
    return name


def rss_mb(pid: int) -> float:
    """Resident set size of one process in MB (0 when it is gone)."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * _PAGE_KB / 1024


def pss_mb(pid: int) -> float:
    """Proportional set size in MB: shared pages divided among the processes sharing them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    pss_mb: float
    processes: int
    detail: list[tuple[int, str, float]]  # pid, what it runs, RSS MB


def memory(pids: list[int]) -> Memory:
    """Memory of the union of the trees of ``pids``."""
    found = members(pids)
    detail = [(s.pid, describe(s.pid), rss_mb(s.pid)) for s in found]
    detail.sort(key=lambda d: -d[2])
    return Memory(
        rss_mb=sum(d[2] for d in detail),
        pss_mb=sum(pss_mb(s.pid) for s in found),
        processes=len(detail),
        detail=detail,
    )


def _alive(stat: Stat) -> bool:
    now = _stat(stat.pid)
    return now is not None and now.started == stat.started and not _zombie(stat.pid)


def _zombie(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return raw[raw.rindex(")") + 2] == "Z"


def _signal(stat: Stat, sig: signal.Signals) -> None:
    if _alive(stat):
        with contextlib.suppress(ProcessLookupError):
            os.kill(stat.pid, sig)


@contextlib.contextmanager
def _shielded() -> Iterator[None]:
    """Ctrl-C (and SIGTERM) wait until the cleanup inside is done: a second Ctrl-C, or the one
    ``uv run`` forwards, must not leave a server running."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop(proc: subprocess.Popen[bytes], grace: float = 20.0) -> list[str]:
    """Stop ``proc`` and its whole tree; returns the names of processes that needed SIGKILL.

    SIGTERM to the first process (servers stop their own children) and up to ``grace`` seconds
    for it to exit; then SIGTERM to whatever of the tree is left, and SIGKILL 5 s later.
    """
    with _shielded():
        return _stop(proc, grace)


def _stop(proc: subprocess.Popen[bytes], grace: float) -> list[str]:
    snapshot = tree(proc.pid)
    sessions = {m.pid for m in snapshot if m.session == m.pid}
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    left = {s.pid: s for s in snapshot if _alive(s)}
    left.update({s.pid: s for s in _all() if s.session in sessions and _alive(s)})
    for stat in left.values():
        _signal(stat, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(s) for s in left.values()):
        time.sleep(0.1)
    killed = []
    for stat in left.values():
        if _alive(stat):
            killed.append(describe(stat.pid))
            _signal(stat, signal.SIGKILL)
    proc.wait()
    return killed
