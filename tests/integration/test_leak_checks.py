"""The suite's check on child processes can fail: a child left running is found, and one that
was stopped, or that a fixture keeps, is not."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.leaks import Children, live_children

pytestmark = pytest.mark.integration


@pytest.fixture
def sleeper() -> subprocess.Popen[bytes]:
    """Deliberately not stopped here: each test stops it (the autouse check would fail else)."""
    return subprocess.Popen(["sleep", "60"])


def test_a_child_left_running_is_found(sleeper: subprocess.Popen[bytes]) -> None:
    before = live_children() - {sleeper.pid}
    try:
        assert Children().leaked(before, grace=0.2) == {sleeper.pid}
    finally:
        sleeper.kill()
        sleeper.wait()
    assert Children().leaked(before, grace=0.2) == set()


def test_a_kept_child_is_not_a_leak(sleeper: subprocess.Popen[bytes]) -> None:
    before = live_children() - {sleeper.pid}
    children = Children()
    children.keep(sleeper.pid)
    try:
        assert children.leaked(before, grace=0.2) == set()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_child_that_exits_within_the_grace_is_not_a_leak(
    sleeper: subprocess.Popen[bytes],
) -> None:
    before = live_children() - {sleeper.pid}
    sleeper.terminate()  # stopping, not yet reaped: the grace covers it
    assert Children().leaked(before, grace=10) == set()
    sleeper.wait()
