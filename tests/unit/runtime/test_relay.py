"""The runtime's relay starts its engine on a socket with the runtime's own arguments."""

from __future__ import annotations

import sys

from berth.runtime.relay import engine_argv


def test_the_engine_listens_on_the_socket_with_every_other_argument() -> None:
    given = ["--artifact", "/a", "--format", "gguf", "--host", "10.0.0.2", "--port", "0"]
    given += ["--port-file", "/b/p.port", "--max-concurrency", "4", "--port-file=/b/q"]
    assert engine_argv(given, "/b/p.port.sock") == [
        sys.executable,
        "-m",
        "berth.runtime",
        *["--artifact", "/a", "--format", "gguf", "--max-concurrency", "4"],
        *["--socket", "/b/p.port.sock"],
    ]
