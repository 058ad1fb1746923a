"""The public port of ``berth serve --gateway-workers``: workers share it with SO_REUSEPORT,
but a port another server already listens on is refused, even one that shares it too."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_a_port_in_use_is_refused_even_by_a_socket_that_shares_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        done = subprocess.run(
            [sys.executable, "-m", "berth", "serve", "--port", port, "--gateway-workers", "1"],
            env={**env, "BERTH_HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert f"cannot bind 127.0.0.1:{port}: [Errno 98] Address already in use" in done.stderr
