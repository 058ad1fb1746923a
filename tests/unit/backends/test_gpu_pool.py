"""Each GPU held by one replica at a time."""

from __future__ import annotations

import pytest

from berth.backends.gpus import GpuPool
from berth.core.errors import BerthError


def test_replicas_take_distinct_gpus_and_a_restart_keeps_its_own() -> None:
    pool = GpuPool(("0", "1", "2"))
    assert pool.take("a", 1) == ("0",)
    assert pool.take("b", 2) == ("1", "2")
    assert pool.take("a", 1) == ("0",)


def test_past_the_last_free_gpu_the_start_fails_with_what_holds_them() -> None:
    pool = GpuPool(("0", "1"))
    pool.take("a", 1)
    with pytest.raises(BerthError, match="needs 2 GPUs and 1 of this host's 2 are free"):
        pool.take("b", 2)


def test_a_released_gpu_is_taken_again() -> None:
    pool = GpuPool(("0",))
    pool.take("a", 1)
    pool.release("a")
    assert pool.take("b", 1) == ("0",)


def test_an_adopted_replica_keeps_what_it_held() -> None:
    pool = GpuPool(("0", "1"))
    pool.hold("old", ("0",))
    assert pool.take("new", 1) == ("1",)


def test_a_host_without_gpus_says_so() -> None:
    with pytest.raises(BerthError, match="none that berth may use"):
        GpuPool(()).take("a", 1)


def test_a_cpu_replica_holds_nothing() -> None:
    assert GpuPool(()).take("a", 0) == ()
