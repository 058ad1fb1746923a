"""What the local backend records of an endpoint's replicas, read from ``$BERTH_HOME``, and
which of the processes it started still run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def replica_states(home: Path, endpoint: str) -> dict[str, dict[str, Any]]:
    """Each replica's ``state.json`` (pid as the host sees it, address, spec) by replica id."""
    return {
        state.parent.name: json.loads(state.read_text())
        for state in (home / "replicas").glob(f"{endpoint}.*/state.json")
    }


def replica_pids(home: Path, endpoint: str) -> dict[str, int]:
    """Each replica's pid by replica id."""
    return {rid: int(state["pid"]) for rid, state in replica_states(home, endpoint).items()}


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone between the two looks
        return False
    return not stat.split(") ", 1)[1].startswith("Z")


def processes_under(home: Path) -> list[int]:
    """Pids whose command line mentions ``home``: replicas berth started from it."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(home).encode() in cmdline and b"berth.runtime" in cmdline:
                pids.append(int(proc.name))
    return [p for p in pids if alive(p)]


def no_replicas_under(home: Path) -> bool:
    return processes_under(home) == []


def replica_socket(home: Path, endpoint: str) -> Path:
    """The Unix socket of the endpoint's one replica."""
    ((_, state),) = replica_states(home, endpoint).items()
    address = str(state["address"])
    assert address.startswith("unix:"), address
    return Path(address.removeprefix("unix:"))


def sandbox_home(home: Path, endpoint: str) -> Path:
    """The writable ``HOME`` of the endpoint's model in its sandbox: where a test and the
    model can both put files."""
    return replica_socket(home, endpoint).parent / "home"
