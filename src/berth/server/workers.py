"""The gateway workers of ``berth serve --gateway-workers N``, supervised by the control process.

Each worker is a child process (`berth.server.worker`) started once the control process
serves, restarted with backoff when it dies, and stopped before the control process stops
(its last usage sums go to it). Their Prometheus figures are files in `metrics_dir`, which
the control process renders. Each reports the snapshot versions it holds over a pipe, so a
retiring replica is stopped only once no worker routes new requests to it; the requests a
worker already sent it are finished by the replica, which drains on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import mark_process_dead

from berth.controller.reconciler import Drain
from berth.core.dataplane import SnapshotBus
from berth.server.worker import SPEC_ENV, WorkerSpec, worker_settings
from berth.settings import Settings

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 15.0
STEADY_S = 30.0
"""A worker that ran this long before dying is restarted at once, not after a backoff."""
STOP_GRACE_S = 40.0
"""Beyond the worker's own grace for in-flight requests: then it is killed."""
CATCH_UP_S = 30.0
"""How long a retirement waits for a worker to take new routes (as long as the in-process
gateway waits for its own in-flight requests): a hung worker must not hold it forever."""


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    holds: int = -1
    """The newest snapshot version this worker reported; -1 until it serves."""
    restarts: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class WorkerPool:
    """Starts, watches and stops the workers; a collector of their process figures."""

    def __init__(self, settings: Settings, count: int, port: int) -> None:
        """``port`` is the public one, already resolved (when 0 was asked) and held."""
        self._settings = settings
        self._port = port
        self._workers = [_Worker(i) for i in range(count)]
        self._stopping = asyncio.Event()
        self._changed = asyncio.Condition()
        self.metrics_dir = settings.home_dir / "run" / "metrics"
        self.metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.metrics_dir.glob("*.db"):  # a previous run's counts start again
            stale.unlink()

    def start(self, control_url: str, token: str) -> None:
        """Start every worker, on the running event loop, once the control process serves."""
        for worker in self._workers:
            worker.task = asyncio.create_task(self._supervise(worker, control_url, token))

    @property
    def serving(self) -> int:
        """Workers that have taken the controller's routes and listen."""
        return sum(1 for w in self._workers if w.process is not None and w.holds >= 0)

    async def stop(self) -> None:
        """SIGTERM to every worker (in-flight requests finish), SIGKILL past the grace."""
        self._stopping.set()
        for worker in self._workers:
            _signal(worker.process, signal.SIGTERM)
        tasks = [w.task for w in self._workers if w.task is not None]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
        if late:
            log.warning("%d gateway worker(s) did not stop in time; killing them", len(late))
            for worker in self._workers:
                _signal(worker.process, signal.SIGKILL)
            await asyncio.wait(late)

    def drain(self, local: Drain, bus: SnapshotBus) -> Drain:
        """The controller's drain with workers: once every worker holds the routes published
        before the retirement (which no longer name the replica), then the local drain."""

        async def drain(replica_id: str) -> None:
            await self.caught_up(bus.current.version)
            await local(replica_id)

        return drain

    async def caught_up(self, version: int, timeout_s: float = CATCH_UP_S) -> None:
        """Return once every running worker holds ``version`` or newer, or after ``timeout_s``
        (a worker that hangs must not hold retirements forever)."""

        def behind() -> bool:
            return any(w.process is not None and w.holds < version for w in self._workers)

        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: not behind()), timeout_s)
        if behind():
            log.warning(
                "a gateway worker is still behind snapshot %d after %.0fs", version, timeout_s
            )

    def collect(self) -> Iterator[Metric]:
        serving = GaugeMetricFamily(
            "berth_gateway_workers", "Gateway worker processes serving the public port."
        )
        serving.add_metric([], self.serving)
        yield serving
        restarts = CounterMetricFamily(
            "berth_gateway_worker_restarts",
            "Gateway worker processes started again after they died, by worker index.",
            labels=["worker"],
        )
        for worker in self._workers:
            restarts.add_metric([str(worker.index)], worker.restarts)
        yield restarts

    async def _supervise(self, worker: _Worker, control_url: str, token: str) -> None:
        backoff = FIRST_BACKOFF_S
        while not self._stopping.is_set():
            began = time.monotonic()
            code = await self._run(worker, control_url, token)
            if self._stopping.is_set():
                return
            backoff = FIRST_BACKOFF_S if time.monotonic() - began > STEADY_S else backoff
            log.warning(
                "gateway worker %d exited with %s; starting it again in %.1fs",
                worker.index,
                code,
                backoff,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            worker.restarts += 1

    async def _run(self, worker: _Worker, control_url: str, token: str) -> int:
        """One life of a worker: start it, follow what it reports, return its exit code."""
        readable, writable = os.pipe()
        spec = WorkerSpec(
            index=worker.index,
            control_url=control_url,
            token=token,
            host=self._settings.server.host,
            port=self._port,
            acks_fd=writable,
            settings=worker_settings(self._settings),
        )
        env = {
            **os.environ,
            SPEC_ENV: spec.to_env(),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
        }
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "berth.server.worker",
                stdin=asyncio.subprocess.PIPE,  # its lifeline: EOF when this process is gone
                env=env,
                pass_fds=(writable,),
                start_new_session=True,  # signals come from here, not from the terminal
            )
        except BaseException:
            os.close(readable)
            raise
        finally:
            os.close(writable)
        worker.process = process
        if self._stopping.is_set():  # stop() came while it was being started
            _signal(process, signal.SIGTERM)
        try:
            await self._follow(worker, readable)
            return await process.wait()
        finally:
            async with self._changed:
                worker.process, worker.holds = None, -1
                self._changed.notify_all()
            mark_process_dead(process.pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]

    async def _follow(self, worker: _Worker, readable: int) -> None:
        """Read the versions the worker reports until it closes the pipe (it exited)."""
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(readable, "rb")
        )
        try:
            async for line in reader:
                async with self._changed:
                    worker.holds = int(line)
                    self._changed.notify_all()
        finally:
            transport.close()


def _signal(process: asyncio.subprocess.Process | None, signum: int) -> None:
    if process is not None and process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)
