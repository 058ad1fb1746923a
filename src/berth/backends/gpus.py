"""Which replica holds which of the host's GPUs."""

from __future__ import annotations

from berth.core.errors import BerthError


class GpuPool:
    """Whole GPUs, each held by at most one replica at a time."""

    def __init__(self, indices: tuple[str, ...]) -> None:
        self._indices = indices
        self._held: dict[str, tuple[str, ...]] = {}

    def take(self, replica_id: str, count: int) -> tuple[str, ...]:
        """``count`` free GPUs for the replica (the same ones again if it holds them already,
        as a restarted replica does)."""
        if count == 0:
            return ()
        held = self._held.get(replica_id)
        if held is not None and len(held) == count:
            return held
        busy = {
            index for rid, indices in self._held.items() if rid != replica_id for index in indices
        }
        free = [index for index in self._indices if index not in busy]
        if len(free) < count:
            raise BerthError(
                f"The replica needs {count} GPU{'s' if count > 1 else ''} and "
                + (
                    "this host has none that berth may use (BERTH_REPLICAS__GPUS)."
                    if not self._indices
                    else f"{len(free)} of this host's {len(self._indices)} are free; the "
                    "others are held by other replicas. Lower the replicas of GPU workload "
                    "types, or add a host with GPUs."
                )
            )
        self._held[replica_id] = tuple(free[:count])
        return self._held[replica_id]

    def hold(self, replica_id: str, indices: tuple[str, ...]) -> None:
        """Record what an adopted replica (started by a previous server) holds."""
        if indices:
            self._held[replica_id] = indices

    def release(self, replica_id: str) -> None:
        self._held.pop(replica_id, None)
