"""How many GPUs a workload type holds, and which GPUs a host offers replicas."""

from __future__ import annotations

from pathlib import Path

import pytest

from berth.core.gpus import device_files, gpus_for, host_gpus


@pytest.mark.parametrize(
    ("workload_type", "count"),
    [(None, 0), ("CPU", 0), ("CPU_LARGE", 0), ("GPU_SMALL", 1), ("MULTIGPU_MEDIUM", 4)],
)
def test_each_workload_type_holds_whole_gpus(workload_type: str | None, count: int) -> None:
    assert gpus_for(workload_type) == count


def _dev(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).touch()
    return tmp_path


def test_auto_finds_each_numbered_nvidia_device_in_order(tmp_path: Path) -> None:
    dev = _dev(tmp_path, "nvidia10", "nvidia2", "nvidiactl", "nvidia-uvm", "null", "nvidia0")
    assert host_gpus("auto", dev) == ("0", "2", "10")


def test_none_and_a_list_override_what_the_host_has(tmp_path: Path) -> None:
    dev = _dev(tmp_path, "nvidia0", "nvidia1")
    assert host_gpus("none", dev) == ()
    assert host_gpus("1", dev) == ("1",)
    assert host_gpus("0, 3", dev) == ("0", "3")


def test_a_host_without_dev_has_no_gpu(tmp_path: Path) -> None:
    assert host_gpus("auto", tmp_path / "missing") == ()


def test_a_replica_sees_its_own_gpus_and_the_shared_control_devices(tmp_path: Path) -> None:
    dev = _dev(tmp_path, "nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm")
    assert device_files(("1",), dev) == [
        str(dev / "nvidia1"),
        str(dev / "nvidiactl"),
        str(dev / "nvidia-uvm"),
    ]
