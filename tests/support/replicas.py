"""What the local backend records of an endpoint's replicas, read from ``$BERTH_HOME``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def replica_states(home: Path, endpoint: str) -> dict[str, dict[str, Any]]:
    """Each replica's ``state.json`` (pid as the host sees it, address, spec) by replica id."""
    return {
        state.parent.name: json.loads(state.read_text())
        for state in (home / "replicas").glob(f"{endpoint}.*/state.json")
    }


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
