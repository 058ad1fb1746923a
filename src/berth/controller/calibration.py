"""Calibration: the throughput chunk of an open LLM's version on this host, measured.

One replica of the version runs as any of its replicas would (the environment berth builds
for it, the same sandbox and box, the same engine flags, ``LLM_SLOTS`` slots), but as a
process this service owns rather than one of the backend's: the controller stops every
backend replica that no target names. It answers the reference workload
(``controller/workload.py``); the tokens per second it sustains (prompt and completion,
as admission counts them), floored
(``core.throughput.round_chunk``), is the chunk, stored with its method and date for the
(version, host fingerprint) pair. Calls for a version being calibrated share the one run;
calibrating again replaces the stored chunk.

The API asks from its worker threads (``calibrated`` blocks until a chunk is known), the
controller from the event loop (``begin`` never blocks); runs happen on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import platform
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy.orm import Session

from berth.backends.base import ReplicaSpec
from berth.backends.process import Process, box_of, read_tail, spawn_replica
from berth.controller import workload
from berth.controller.environments import Environments, EnvReady
from berth.core.clock import Clock
from berth.core.dataplane import CALIBRATED_FORMATS, generates_tokens
from berth.core.errors import BerthError, InvalidParameter
from berth.core.throughput import (
    LLM_SLOTS,
    Calibration,
    CalibrationMethod,
    CalibrationProgress,
    CalibrationState,
    round_chunk,
)
from berth.envs import spec_of
from berth.runtime.engine import engine_threads
from berth.sandbox import Sandbox
from berth.store import calibrations as calibration_store
from berth.store import models as model_store
from berth.store.db import Database

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(model, version)."""
T = TypeVar("T")

STARTUP_TIMEOUT_S = 300.0
PROBE_EVERY_S = 0.05
RETRY_FAILED_AFTER_S = 30.0
"""A failed calibration is not started again by the controller sooner than this."""
CPU_INFO = Path("/proc/cpuinfo")


@dataclass(frozen=True, slots=True)
class _Version:
    model: str
    version: str
    artifact: str
    model_format: str
    environment: Mapping[str, Any]
    details: Mapping[str, Any]


class Calibrations:
    def __init__(
        self,
        db: Database,
        envs: Environments,
        sandbox: Sandbox,
        clock: Clock,
        folder: Path,
        on_change: Callable[[], None],
        measure_s: float = 8.0,
    ) -> None:
        """``folder`` keeps each calibration engine's output; ``on_change`` hears that one
        ended (entities waiting for their chunk can start); ``measure_s`` is the wall time
        of the measured rounds."""
        self._db = db
        self._envs = envs
        self._sandbox = sandbox
        self._clock = clock
        self._folder = folder
        self._on_change = on_change
        self._measure_s = measure_s
        self._hardware = host_hardware()
        self._tasks: dict[Key, asyncio.Task[Calibration]] = {}
        self._progress: dict[Key, CalibrationProgress] = {}
        self._failed_at: dict[Key, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Take calls from other threads from now on (the server's event loop runs)."""
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def fingerprint(self, environment: Mapping[str, Any]) -> str:
        """The kind of host a chunk holds for: this machine's CPUs and the engine the
        version's environment (``details.environment``) installs."""
        return f"{self._hardware}; {engine_of(environment)}"

    def lookup(
        self, session: Session, model: str, version: str, environment: Mapping[str, Any]
    ) -> Calibration | None:
        """The stored chunk of an open LLM's version whose environment is ``environment``
        on this host, read in ``session``; None when it was not calibrated here."""
        fingerprint = self.fingerprint(environment)
        return calibration_store.get(session, model, int(version), fingerprint)

    # Asked from the API's worker threads.

    def stored(self, model: str, version: str) -> Calibration | None:
        """The chunk stored for the version on this host; None for another format or a
        version not calibrated here."""
        with self._db.transaction() as session:
            info = model_store.get_version(session, model, int(version))
            if info.format not in CALIBRATED_FORMATS:
                return None
            return self.lookup(session, model, version, info.details.get("environment") or {})

    def calibrated(self, model: str, version: str) -> Calibration:
        """The stored chunk, else one measured now (sharing a run already going); blocks."""
        found = self.stored(model, version)
        if found is not None:
            return found
        return self._on_loop(self.calibrate(model, version))

    def recalibrate(self, model: str, version: str) -> CalibrationProgress:
        """Start calibrating again (or join the run going) and answer at once."""

        async def begin() -> CalibrationProgress:
            return self.begin(model, version, after_failure=True)

        return self._on_loop(begin())

    def progress(self, model: str, version: str) -> CalibrationProgress | None:
        """The run going or last ended in this process, else None."""
        return self._progress.get((model, version))

    # Asked on the event loop.

    async def calibrate(self, model: str, version: str) -> Calibration:
        found = await asyncio.to_thread(self.stored, model, version)
        if found is not None:
            return found
        self.begin(model, version, after_failure=True)
        return await asyncio.shield(self._tasks[(model, version)])

    def begin(self, model: str, version: str, *, after_failure: bool) -> CalibrationProgress:
        """Start a run unless one is going, or one failed lately and not ``after_failure``
        (the controller's passes do not retry a failure in a loop); its progress."""
        key = (model, version)
        if key in self._tasks:
            return self._progress[key]
        failed_at = self._failed_at.get(key, -math.inf)
        if not after_failure and time.monotonic() - failed_at < RETRY_FAILED_AFTER_S:
            return self._progress[key]
        started = time.monotonic()
        self._report(key, started, "environment", "Looking up the model version.")
        task = asyncio.create_task(self._run(key, started), name=f"calibrate {model}/{version}")
        self._tasks[key] = task
        task.add_done_callback(lambda _: self._ended(key, task))
        return self._progress[key]

    def _ended(self, key: Key, task: asyncio.Task[Calibration]) -> None:
        self._tasks.pop(key, None)
        if not task.cancelled():
            task.exception()  # its failure is in the progress; no one need await it
        self._on_change()

    async def _run(self, key: Key, started: float) -> Calibration:
        try:
            calibration = await self._measure(key, started)
        except Exception as exc:  # a cancellation (the server stopping) goes through
            message = exc.message if isinstance(exc, BerthError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, BerthError):
                log.exception("calibrating %s version %s failed", *key)
            failed = f"Calibrating model '{key[0]}' version {key[1]} failed: {message}"
            self._failed_at[key] = time.monotonic()
            self._progress[key] = CalibrationProgress(
                CalibrationState.FAILED, "failed", failed, time.monotonic() - started
            )
            raise InvalidParameter(failed) from exc
        self._failed_at.pop(key, None)
        self._progress[key] = CalibrationProgress(
            CalibrationState.DONE,
            "done",
            f"{calibration.chunk_tps} tokens/s per replica on this host.",
            calibration.duration_s,
            1.0,
            calibration,
        )
        return calibration

    async def _measure(self, key: Key, started: float) -> Calibration:
        version = await asyncio.to_thread(self._version, key)
        if version.model_format not in CALIBRATED_FORMATS:
            raise InvalidParameter(
                f"it is a {version.model_format} model; only open LLMs (GGUF) have a "
                "throughput chunk"
            )
        if not generates_tokens(version.model_format, version.details):
            raise InvalidParameter(
                "it is an embedding model; a throughput chunk measures generated tokens, so "
                "it is sized by concurrency (workload_size or min/max_provisioned_concurrency)"
            )
        env = await self._envs.settled(
            version.environment,
            version.artifact,
            lambda line: self._report(key, started, "environment", line),
        )
        if not isinstance(env, EnvReady):
            raise InvalidParameter(env.message)
        spec = ReplicaSpec(
            endpoint="calibration",
            served_entity=f"{version.model}-{version.version}",
            artifact=version.artifact,
            model_format=version.model_format,
            python=env.python,
            pythonpath=env.pythonpath,
            max_concurrency=LLM_SLOTS,
        )
        threads = engine_threads(len(os.sched_getaffinity(0)))  # as the engine will pick
        self._report(
            key,
            started,
            "loading",
            f"Loading the weights ({LLM_SLOTS} slots, {threads} thread"
            f"{'' if threads == 1 else 's'}).",
        )
        async with self._engine(spec) as client:
            self._report(key, started, "warming up", f"One warm-up round of {LLM_SLOTS} requests.")

            def measured(done: workload.Rounds) -> None:
                self._report(
                    key,
                    started,
                    "measuring",
                    f"Round {done.rounds}: {done.tokens_per_s:.1f} tokens/s so far.",
                    min(1.0, done.seconds / self._measure_s),
                )

            rounds = await workload.measure(client, LLM_SLOTS, self._measure_s, measured)
        method = CalibrationMethod(
            workload=workload.describe(LLM_SLOTS, self._measure_s),
            engine=engine_of(version.environment),
            slots=LLM_SLOTS,
            threads=threads,
            prompt_tokens=rounds.prompt_tokens,
            max_tokens=workload.MAX_TOKENS,
            rounds=rounds.rounds,
            requests=rounds.requests,
            completion_tokens=rounds.completion_tokens,
            seconds=rounds.seconds,
        )
        chunk = round_chunk(method.tokens_per_s)
        if chunk < 1:
            raise InvalidParameter(
                f"one replica sustained {method.tokens_per_s:.2f} tokens/s, under one token "
                "per second: this host cannot serve it with provisioned throughput"
            )
        calibration = Calibration(
            chunk_tps=chunk,
            fingerprint=self.fingerprint(version.environment),
            calibrated_at=self._clock.now_ms(),
            duration_s=time.monotonic() - started,
            method=method,
        )
        await asyncio.to_thread(self._save, key, calibration)
        log.info(
            "calibrated %s version %s: %d tokens/s per replica (%.1f measured) in %.1f s",
            *key,
            chunk,
            method.tokens_per_s,
            calibration.duration_s,
        )
        return calibration

    @contextlib.asynccontextmanager
    async def _engine(self, spec: ReplicaSpec) -> AsyncIterator[httpx.AsyncClient]:
        """An engine for ``spec``, ready, and a client talking to it; stopped on leaving."""
        replica_id = f"calibration.{spec.served_entity}"
        self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        output = self._folder / f"{replica_id}.log"
        output.unlink(missing_ok=True)
        socket = box_of(self._sandbox, spec).socket(replica_id)
        socket.unlink(missing_ok=True)
        proc = await _spawn(replica_id, spec, self._sandbox, output)
        try:
            await _until_ready(proc, socket, output)
            transport = httpx.AsyncHTTPTransport(uds=str(socket))
            async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
                yield client
        finally:
            await proc.terminate(grace_s=5.0)
            socket.unlink(missing_ok=True)

    def _version(self, key: Key) -> _Version:
        with self._db.transaction() as session:
            info = model_store.get_version(session, key[0], int(key[1]))
        return _Version(
            key[0],
            key[1],
            info.artifact_path,
            info.format,
            info.details.get("environment") or {},
            info.details,
        )

    def _save(self, key: Key, calibration: Calibration) -> None:
        with self._db.transaction() as session:
            calibration_store.save(session, key[0], int(key[1]), calibration)

    def _report(
        self, key: Key, started: float, phase: str, message: str, fraction: float = 0.0
    ) -> None:
        self._progress[key] = CalibrationProgress(
            CalibrationState.RUNNING, phase, message, time.monotonic() - started, fraction
        )

    def _on_loop(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the server's event loop from another thread and wait for it."""
        if self._loop is None:
            work.close()
            raise RuntimeError("calibrations are not started: the server's loop is not running")
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()


def host_hardware() -> str:
    """This machine's CPU model and the logical CPUs this process (and so a replica's engine
    threads) may run on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in CPU_INFO.read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() in ("model name", "Hardware", "cpu model"):
                model = value.strip()
                break
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    return f"{model}, {len(os.sched_getaffinity(0))} logical CPUs"


def engine_of(environment: Mapping[str, Any]) -> str:
    """The engine a version's environment installs: its requirements (the engine's pin)."""
    spec = spec_of(dict(environment))
    return " ".join(spec.requirements) if spec is not None else "berth's own environment"


async def _spawn(replica_id: str, spec: ReplicaSpec, sandbox: Sandbox, output: Path) -> Process:
    """Start the engine; a cancellation meanwhile waits for the start, then stops it."""
    spawning = asyncio.ensure_future(spawn_replica(replica_id, spec, sandbox, output))
    try:
        return await asyncio.shield(spawning)
    except asyncio.CancelledError:
        with contextlib.suppress(BerthError, OSError):
            await (await spawning).terminate(grace_s=2.0)
        raise


async def _until_ready(proc: Process, socket: Path, output: Path) -> None:
    """The engine's socket appears once the weights are loaded and a token generated."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not socket.exists():
        if not proc.alive():
            raise InvalidParameter(
                f"the engine exited before it was ready. Its output:\n{read_tail(output, 1500)}"
            )
        if time.monotonic() > deadline:
            raise InvalidParameter(f"the engine was not ready within {STARTUP_TIMEOUT_S:.0f} s")
        await asyncio.sleep(PROBE_EVERY_S)
