"""A TCP twin of a berth replica, for driving "the replica straight" with wrk.

berth's replicas listen on private Unix sockets in their sandbox, which wrk cannot reach. The
twin runs the same runtime with the same interpreter, artifact, flags and environment as the
replica whose ``state.json`` it is given, on a loopback port: what a replica costs without the
gateway in front, as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx


class ReplicaTwin:
    def __init__(self, state_file: Path) -> None:
        spec = json.loads(state_file.read_text())["spec"]
        self._folder = Path(tempfile.mkdtemp(prefix="berth-twin-"))
        port_file = self._folder / "port"
        argv = [
            spec["python"],
            "-m",
            "berth.runtime",
            "--artifact",
            spec["artifact"],
            "--format",
            spec["model_format"],
            "--port-file",
            str(port_file),
            "--max-concurrency",
            str(spec["max_concurrency"]),
        ]
        if spec.get("max_batch_size", 1) > 1:
            argv += ["--max-batch-size", str(spec["max_batch_size"])]
            argv += ["--max-batch-wait-ms", str(spec["max_batch_wait_ms"])]
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}
        env.update(dict(spec.get("env", [])))
        if spec.get("pythonpath"):
            env["PYTHONPATH"] = spec["pythonpath"]
        log = (self._folder / "twin.log").open("ab")
        self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if port_file.exists() and self._healthy(port_file):
                self.url = f"http://127.0.0.1:{port_file.read_text().strip()}/invocations"
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.close()
        raise RuntimeError(f"replica twin did not start: {(self._folder / 'twin.log').read_text()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _healthy(self, port_file: Path) -> bool:
        try:
            port = port_file.read_text().strip()
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except (httpx.HTTPError, ValueError, OSError):
            return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def twin_of(home: Path, endpoint: str) -> ReplicaTwin:
    """The twin of ``endpoint``'s (only) replica under ``home``."""
    (state,) = (home / "replicas").glob(f"{endpoint}.*/state.json")
    return ReplicaTwin(state)
