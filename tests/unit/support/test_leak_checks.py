"""The suite's own checks can fail: a unit test that reaches outside its process is refused,
and a task left pending on a loop is found."""

from __future__ import annotations

import asyncio
import socket
import subprocess

import pytest

from tests.support.in_process import InProcess, OutOfProcess
from tests.support.leaks import PendingTasks


def test_starting_a_process_is_refused_and_remembered(in_process: InProcess) -> None:
    with pytest.raises(OutOfProcess, match="move this test to tests/integration"):
        subprocess.run(["sleep", "60"], check=False)
    assert in_process.attempts == ["subprocess.Popen(['sleep', '60'])"]
    in_process.attempts.clear()  # seen: this test is the one allowed to try


def test_connecting_or_listening_is_refused_and_remembered(in_process: InProcess) -> None:
    with socket.socket() as sock:
        with pytest.raises(OutOfProcess):
            sock.bind(("127.0.0.1", 0))
        with pytest.raises(OutOfProcess):
            sock.connect(("127.0.0.1", 9))
    assert [attempt.split("(")[0] for attempt in in_process.attempts] == [
        "socket.bind",
        "socket.connect",
    ]
    in_process.attempts.clear()


def test_an_event_loop_still_runs(in_process: InProcess) -> None:
    """asyncio's loop wakes itself through a socket pair: that stays allowed."""

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert asyncio.run(answer()) == 42
    assert in_process.attempts == []


def test_a_task_left_pending_is_found(no_pending_tasks: PendingTasks) -> None:
    async def forgets_a_task() -> None:
        asyncio.get_running_loop().create_task(asyncio.sleep(3600), name="forgotten")

    async def awaits_its_task() -> None:
        await asyncio.get_running_loop().create_task(asyncio.sleep(0))

    watched = PendingTasks()
    with watched.watching():
        asyncio.run(awaits_its_task())
        assert watched.found == []
        asyncio.run(forgets_a_task())
    assert len(watched.found) == 1 and "forgotten" in watched.found[0]
    assert no_pending_tasks.found == watched.found  # the check every test runs under saw it too
    no_pending_tasks.found.clear()
