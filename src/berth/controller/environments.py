"""Model environments as the controller sees them: ready, building, or failed.

Builds run in threads beside the control loop (never on the request path); the controller
asks for a status on every pass and gets a nudge when a build ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from berth.core.artifact_copies import ArtifactCopies
from berth.core.errors import Unavailable
from berth.envs import EnvBuildFailed, build_env, mark_used, runtime_path, spec_of
from berth.envs.cache import built_python
from berth.metrics import Metrics
from berth.sandbox import Sandbox

log = logging.getLogger(__name__)

RETRY_FAILED_AFTER_S = 30.0


@dataclass(frozen=True, slots=True)
class EnvReady:
    python: str
    pythonpath: str | None


@dataclass(frozen=True, slots=True)
class EnvPending:
    """Not usable yet: ``failed`` tells a failed build from one still running."""

    message: str
    failed: bool = False


EnvStatus = EnvReady | EnvPending


class Environments:
    def __init__(
        self,
        root: Path,
        own_python: str,
        on_change: Callable[[], None],
        metrics: Metrics,
        sandbox: Sandbox | None = None,
        copies: ArtifactCopies | None = None,
    ) -> None:
        """Environments are built under ``root``, from artifacts read through ``copies``
        (by default, artifacts are folders on this machine)."""
        self._root = root
        self._copies = copies or ArtifactCopies(root / "artifact-copies")
        self._sandbox = sandbox
        self._metrics = metrics
        self._own = EnvReady(own_python, str(runtime_path(root)))
        """berth's own environment also runs the runtime's copy: a sandboxed replica sees
        neither berth's sources nor its server."""
        self._on_change = on_change
        self._ready: dict[str, EnvReady] = {}
        self._progress: dict[str, str] = {}
        self._failed: dict[str, tuple[float, str]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def status(self, details: Mapping[str, Any], artifact: str) -> EnvStatus:
        """The environment a model version asked for; starts its build when needed."""
        env_hash = details.get("hash")
        if env_hash is None:
            return self._own
        if env_hash in self._ready:
            return self._ready[env_hash]
        if env_hash not in self._tasks and (ready := self._cached(env_hash)) is not None:
            return ready
        failed = self._failed.get(env_hash)
        if failed is not None and time.monotonic() - failed[0] < RETRY_FAILED_AFTER_S:
            return EnvPending(failed[1], failed=True)
        if env_hash not in self._tasks:
            self._tasks[env_hash] = asyncio.create_task(self._build(env_hash, details, artifact))
        line = self._progress.get(env_hash, "resolving requirements")
        return EnvPending(f"Building environment {env_hash[:12]} with uv: {line}")

    async def settled(
        self, details: Mapping[str, Any], artifact: str, on_pending: Callable[[str], None]
    ) -> EnvStatus:
        """The environment once built (starting or joining the build the controller would),
        or its failure; ``on_pending`` hears how the build goes meanwhile."""
        while True:
            status = self.status(details, artifact)
            if isinstance(status, EnvReady) or status.failed:
                return status
            on_pending(status.message)
            building = self._tasks.get(details["hash"])
            if building is not None:
                await asyncio.wait({building}, timeout=1.0)

    def _cached(self, env_hash: str) -> EnvReady | None:
        """An environment built earlier (by another run, or at registration)."""
        python = built_python(self._root, env_hash)
        if python is None:
            return None
        ready = EnvReady(str(python), str(runtime_path(self._root)))
        self._ready[env_hash] = ready
        mark_used(self._root, env_hash)
        return ready

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _build(self, env_hash: str, details: Mapping[str, Any], artifact: str) -> None:
        spec = spec_of(dict(details))
        assert spec is not None

        def progress(line: str) -> None:
            if line.strip():
                self._progress[env_hash] = line.strip()[:160]

        started = time.monotonic()
        try:
            local = await asyncio.to_thread(self._copies.local, artifact)
            built = await asyncio.to_thread(
                build_env,
                spec,
                self._root,
                artifact=local,
                on_line=progress,
                sandbox=self._sandbox,
            )
            pythonpath = await asyncio.to_thread(runtime_path, self._root)
        except EnvBuildFailed as exc:
            self._metrics.env_builds.labels("failed").inc()
            self._failed[env_hash] = (time.monotonic(), exc.message)
        except Unavailable as exc:  # the artifact could not be copied here
            self._failed[env_hash] = (time.monotonic(), exc.message)
        except Exception as exc:  # a broken build must not take the control loop down
            log.exception("environment %s failed to build", env_hash)
            self._failed[env_hash] = (time.monotonic(), f"Environment build failed: {exc}")
        else:
            if built.built:
                self._metrics.env_builds.labels("built").inc()
                self._metrics.env_build_seconds.observe(time.monotonic() - started)
            self._ready[env_hash] = EnvReady(str(built.python), str(pythonpath))
            mark_used(self._root, env_hash)
            self._failed.pop(env_hash, None)
        finally:
            self._tasks.pop(env_hash, None)
            self._progress.pop(env_hash, None)
            self._on_change()
