"""A private ``redis-server`` for ``berth serve --gateway-workers N`` (N > 1) when no
``BERTH_REDIS_URL`` is given: the workers' rate-limit counters must be one.

It listens on a Unix socket under ``$BERTH_HOME/run`` only (no TCP port, mode 0700), keeps
nothing on disk, and lives as long as the server: started before it, stopped after it. One
left running by a server that was killed is stopped at the next start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

START_S = 10.0
MAX_SOCKET_PATH = 100
"""Unix socket paths are limited to 107 bytes by the kernel."""


class RedisUnavailable(RuntimeError):
    """No Redis to share rate-limit counters between gateway workers."""


class PrivateRedis:
    def __init__(self, run_dir: Path) -> None:
        self._dir = run_dir
        self.socket = run_dir / "redis.sock"
        self._pid_file = run_dir / "redis.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> PrivateRedis:
        """Start it and wait until it answers PING; `RedisUnavailable` says why it cannot."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisUnavailable(
                "Several gateway workers share rate-limit counters through Redis: set "
                "BERTH_REDIS_URL=redis://host:port/0, or install redis-server (e.g. "
                "`apt-get install redis-server`) and berth starts a private one."
            )
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise RedisUnavailable(
                f"The private Redis socket {self.socket} would be over the kernel's limit for "
                "a socket path: set BERTH_REDIS_URL, or use a shorter BERTH_HOME."
            )
        self._dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        args = ["--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(self._dir)]
        args += ["--logfile", str(self._dir / "redis.log")]
        self._proc = subprocess.Popen(
            [binary, *args],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C must not stop it before the workers using it
        )
        self._pid_file.write_text(str(self._proc.pid))
        deadline = time.monotonic() + START_S
        while not self._answers():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = (self._dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RedisUnavailable(f"The private redis-server did not start:\n{log}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        self._pid_file.unlink(missing_ok=True)

    def _answers(self) -> bool:
        import redis  # only with gateway workers: the client costs ~25 MB of imports

        try:
            with redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1) as client:
                return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def _stop_leftover(self) -> None:
        """Stop the private Redis of a previous run that was killed, if its pid is still that
        Redis (a redis-server working in our folder), so it does not live on forever."""
        try:
            pid = int(self._pid_file.read_text())
            running_here = Path(os.readlink(f"/proc/{pid}/cwd")) == self._dir
            is_redis = "redis" in Path(os.readlink(f"/proc/{pid}/exe")).name
        except (OSError, ValueError):
            return
        if not (running_here and is_redis):
            return
        # Wait for it to be gone: on its way out it unlinks the socket, which would be ours.
        deadline = time.monotonic() + START_S
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)
