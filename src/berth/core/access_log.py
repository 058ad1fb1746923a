"""Endpoint access logs: one JSON line per request under ``<logs>/<endpoint>/access-<host>.log``.

Written by the gateway when an endpoint's access log is on, read back by the API. Each host
appends to a file of its own: one host's processes (gateway workers) may share a file, since
each line is one ``O_APPEND`` write, but on a network file system (``BERTH_SHARED_DIR``)
appends from different hosts are not atomic. A reader merges every host's file by time.
Standard library only: both planes use it.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_NOT_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9._-]")
TAIL_BYTES_PER_LINE = 1024
HOST_LABEL_CHARS = 64


def endpoint_log_directory(root: Path, endpoint: str) -> Path:
    """The endpoint's folder of logs; any name that could leave ``root`` is refused."""
    if not _SAFE.match(endpoint):
        raise ValueError(f"not an endpoint name: {endpoint!r}")
    return root / endpoint


def host_label(hostname: str) -> str:
    """``hostname`` as part of a file name: characters other than letters, digits, ``.``,
    ``-`` and ``_`` become ``_``."""
    return _NOT_IN_FILE_NAMES.sub("_", hostname)[:HOST_LABEL_CHARS] or "host"


def access_log_path(root: Path, endpoint: str, host: str) -> Path:
    """The file ``host`` (a `host_label`) appends the endpoint's lines to."""
    return endpoint_log_directory(root, endpoint) / f"access-{host}.log"


class AccessLog:
    """Appends lines per endpoint to this host's files, opened on first use and line-buffered,
    so a line is on disk (for readers in other processes) as soon as its request is answered."""

    def __init__(self, root: Path, host: str | None = None) -> None:
        """``host``: the name the files carry; default this machine's (`socket.gethostname`)."""
        self._root = root
        self._host = host_label(host if host is not None else socket.gethostname())
        self._files: dict[str, TextIO] = {}

    def write(self, endpoint: str, line: dict[str, Any]) -> None:
        out = self._files.get(endpoint)
        if out is None:
            path = access_log_path(self._root, endpoint, self._host)
            path.parent.mkdir(parents=True, exist_ok=True)
            out = self._files[endpoint] = path.open("a", encoding="utf-8", buffering=1)
        out.write(json.dumps(line, separators=(",", ":")) + "\n")

    def close(self) -> None:
        for out in self._files.values():
            out.close()
        self._files.clear()


def read_access_log(root: Path, endpoint: str, lines: int) -> str:
    """The newest ``lines`` lines of every host's file, oldest first by their ``ts`` (arrival,
    epoch ms; equal times keep file and line order); empty when the log was never on.

    A line that is not a whole JSON object with a ``ts`` (cut by a crash, or still arriving
    over a network file system) is left out.
    """
    try:
        folder = endpoint_log_directory(root, endpoint)
    except ValueError:
        return ""
    if lines < 1:
        return ""
    files = sorted(folder.glob("access*.log"))
    stamped = [entry for path in files for entry in _stamped(path, lines)]
    stamped.sort(key=lambda entry: entry[0])
    return "".join(line for _, line in stamped[-lines:])


def _stamped(path: Path, lines: int) -> Iterator[tuple[float, str]]:
    for line in _tail(path, lines):
        stamp = _stamp(line)
        if stamp is not None:
            yield stamp, line


def _tail(path: Path, lines: int) -> Iterable[str]:
    """The file's last ``lines`` lines, reading only its end."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            start = max(0, os.fstat(handle.fileno()).st_size - lines * TAIL_BYTES_PER_LINE)
            handle.seek(start)
            if start:
                handle.readline()  # the first line read may be cut
            return deque(handle, maxlen=lines)
    except OSError:
        return ()


def _stamp(line: str) -> float | None:
    if not line.endswith("\n"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    stamp = entry.get("ts") if isinstance(entry, dict) else None
    return float(stamp) if isinstance(stamp, int | float) else None
