"""The files of the replica runtime as it runs in model environments: what vermin checks for
Python 3.9, and the only berth modules the runtime may import."""

from __future__ import annotations

from pathlib import Path

import berth

PACKAGE = Path(berth.__file__).parent
SOURCES = [
    PACKAGE / "runtime",
    PACKAGE / "__init__.py",
    PACKAGE / "core" / "latency.py",
    PACKAGE / "core" / "heap.py",
    PACKAGE / "core" / "container_contract.py",
]
CORE_MODULES = {f"berth.core.{p.stem}" for p in SOURCES if p.parent.name == "core"}
