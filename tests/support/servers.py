"""Starts the real ``berth serve`` in a subprocess on a free port and waits for readiness."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.net import free_port, wait_until

FAST_SCALING = {
    "BERTH_AUTOSCALING__UPSCALE_DELAY_S": "0.5",
    "BERTH_AUTOSCALING__DOWNSCALE_DELAY_S": "2",
    "BERTH_AUTOSCALING__SMOOTHING_S": "0.5",
}
"""Autoscaling delays short enough that scaling shows within seconds."""

ADMIN_TOKEN = "bth_test-admin-token"


@dataclass
class BerthServer:
    home: Path
    database_url: str | None
    token: str = ADMIN_TOKEN
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DATABRICKS_"))}
        env.update(
            BERTH_HOME=str(self.home),
            BERTH_ADMIN_TOKEN=self.token,
            BERTH_SANDBOX__MODE="bwrap",
            # The fake LLM providers listen on the loopback, over http.
            BERTH_PROVIDERS__ALLOWED_HOSTS="127.0.0.1",
            # The suite runs where CI runs, without GPUs, whatever the developer's host has.
            BERTH_REPLICAS__GPUS="none",
            # ... and runs no images unless a test asks (test_container_images.py).
            BERTH_REPLICAS__CONTAINER_RUNTIME="none",
        )
        env.update(self.extra_env)
        if self.database_url:
            env["BERTH_DATABASE_URL"] = self.database_url
        return env

    def start(self, *args: str) -> BerthServer:
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "berth", "serve", "--port", str(self.port), *args],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self._ready, timeout=60, what=f"berth serve on {self.url} to be ready")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"berth serve exited early:\n{self.log_path.read_text()[-4000:]}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise
        return self.proc.returncode

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=30,
        )
