"""GPUs: how many a served entity's ``workload_type`` takes, and which ones this host has.

Databricks names GPU workload types after cloud instances; berth keeps the names and gives
each a count of whole GPUs on the host its replicas run on.
"""

from __future__ import annotations

import re
from pathlib import Path

GPUS_PER_WORKLOAD = {
    "GPU_SMALL": 1,
    "GPU_MEDIUM": 1,
    "GPU_LARGE": 1,
    "GPU_XLARGE": 1,
    "MULTIGPU_MEDIUM": 4,
    "GPU_XLARGE_8": 8,
}
"""Whole GPUs one replica of each GPU workload type holds; every other type holds none."""

DEVICE = re.compile(r"^nvidia(\d+)$")
SHARED_DEVICES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
"""Device files every CUDA process opens besides its GPUs' own."""


def gpus_for(workload_type: str | None) -> int:
    return GPUS_PER_WORKLOAD.get(workload_type or "CPU", 0)


def host_gpus(setting: str, dev: Path = Path("/dev")) -> tuple[str, ...]:
    """The indices of the GPUs replicas may hold: ``auto``, every ``/dev/nvidiaN`` here;
    ``none``; or a comma-separated list of indices (e.g. ``0,1``)."""
    if setting == "none":
        return ()
    if setting != "auto":
        return tuple(part.strip() for part in setting.split(",") if part.strip())
    if not dev.is_dir():
        return ()
    found = (DEVICE.match(entry.name) for entry in dev.iterdir())
    return tuple(sorted((m.group(1) for m in found if m), key=int))


def device_files(indices: tuple[str, ...], dev: Path = Path("/dev")) -> list[str]:
    """What a sandboxed replica holding ``indices`` must see of ``/dev``."""
    names = [f"nvidia{index}" for index in indices] + list(SHARED_DEVICES)
    return [str(dev / name) for name in names if (dev / name).exists()]
