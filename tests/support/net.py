"""Small helpers for tests that talk to real servers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.05
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` we were waiting for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
