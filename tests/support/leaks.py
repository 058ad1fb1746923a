"""What a test leaves behind: child processes of the test process still running, and asyncio
tasks still pending when a loop's main coroutine returned. ``tests/conftest.py`` fails a test
that leaves either; processes that session or module fixtures own are kept, not leaked."""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The standard library's own helpers, started once and kept for the interpreter's life.
INTERPRETER_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def live_children() -> set[int]:
    """This process's children that are still running (zombies have ended: they are not)."""
    found: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids = (task / "children").read_text().split()
        except OSError:  # the thread ended while we looked
            continue
        found.update(int(pid) for pid in pids if _state(int(pid)) not in (None, "Z", "X"))
    return found


def describe(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"{pid} (gone)"
    command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return f"{pid}: {command}"


def _state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def _interpreter_helper(pid: int) -> bool:
    return any(helper in describe(pid) for helper in INTERPRETER_HELPERS)


@dataclass
class Children:
    """The children a test may leave running: those fixtures own, and the interpreter's helpers."""

    kept: set[int] = field(default_factory=set)

    def keep(self, pid: int) -> None:
        """``pid`` belongs to a fixture that stops it itself, later than the test's end."""
        self.kept.add(pid)

    @contextmanager
    def keeping_new(self) -> Iterator[None]:
        """Keep every child started inside the block (a session or module fixture's setup)."""
        before = live_children()
        yield
        self.kept.update(live_children() - before)

    def leaked(self, before: set[int], *, grace: float = 10.0) -> set[int]:
        """Children started since ``before`` that are still running after ``grace`` seconds,
        and are neither kept nor the interpreter's (a process being stopped gets the grace)."""
        deadline = time.monotonic() + grace
        while True:
            new = live_children() - before - self.kept
            new = {pid for pid in new if not _interpreter_helper(pid)}
            if not new or time.monotonic() >= deadline:
                return new
            time.sleep(0.05)


def runtimes_under(folder: Path) -> set[int]:
    """Processes of berth's runtime (a replica, its sandbox, a zygote) whose command line
    names a path under ``folder``, whoever their parent: what a server killed or cut short may
    have left running, reparented to init, where no test's check of its children sees it."""
    found: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            words = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        named = any(str(folder).encode() in word for word in words)
        running = _state(int(proc.name)) not in (None, "Z", "X")
        runtime = any(word.startswith(b"berth.runtime") for word in words)
        if runtime and named and running:
            found.add(int(proc.name))
    return found


def kill(pids: set[int]) -> None:
    """Stop leaked children (and the process groups they lead), so one leak fails one test."""
    for pid in pids:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class PendingTasks:
    """Records, for each ``asyncio.run`` (any ``asyncio.Runner``), the tasks still pending when
    its main coroutine returned: asyncio cancels them quietly, which hides a leak."""

    found: list[str] = field(default_factory=list)

    @contextmanager
    def watching(self) -> Iterator[None]:
        original = asyncio.Runner.run
        owner = os.getpid()

        def run(
            runner: asyncio.Runner, coro: Any, *, context: contextvars.Context | None = None
        ) -> Any:
            result = original(runner, coro, context=context)
            if os.getpid() == owner:  # not in a child forked while the test ran
                pending = asyncio.all_tasks(runner.get_loop())
                self.found.extend(repr(task) for task in pending)
            return result

        asyncio.Runner.run = run  # type: ignore[method-assign]
        try:
            yield
        finally:
            asyncio.Runner.run = original  # type: ignore[method-assign]
