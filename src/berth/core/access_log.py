"""Endpoint access logs: one JSON line per request under ``<logs>/<endpoint>/access.log``.

Written by the gateway when an endpoint's access log is on, read back by the API. Standard
library only: both planes use it.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from pathlib import Path
from typing import Any, TextIO

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
TAIL_BYTES_PER_LINE = 1024


def access_log_path(root: Path, endpoint: str) -> Path:
    if not _SAFE.match(endpoint):
        raise ValueError(f"not an endpoint name: {endpoint!r}")
    return root / endpoint / "access.log"


class AccessLog:
    """Appends lines per endpoint to files opened on first use, line-buffered, so a line is
    on disk (for readers in other processes) as soon as its request is answered."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._files: dict[str, TextIO] = {}

    def write(self, endpoint: str, line: dict[str, Any]) -> None:
        out = self._files.get(endpoint)
        if out is None:
            path = access_log_path(self._root, endpoint)
            path.parent.mkdir(parents=True, exist_ok=True)
            out = self._files[endpoint] = path.open("a", encoding="utf-8", buffering=1)
        out.write(json.dumps(line, separators=(",", ":")) + "\n")

    def close(self) -> None:
        for out in self._files.values():
            out.close()
        self._files.clear()


def read_access_log(root: Path, endpoint: str, lines: int) -> str:
    """The newest ``lines`` lines, oldest first; empty when the log was never on."""
    try:
        path = access_log_path(root, endpoint)
        with path.open(encoding="utf-8", errors="replace") as handle:
            start = max(0, os.fstat(handle.fileno()).st_size - lines * TAIL_BYTES_PER_LINE)
            handle.seek(start)
            if start:
                handle.readline()  # the first line read may be cut
            return "".join(deque(handle, maxlen=lines))
    except (OSError, ValueError):
        return ""
