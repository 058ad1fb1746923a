"""Which backend runs this server's replicas: ``local`` (child processes), or ``ray`` when
``BERTH_BACKEND=ray`` (whose module imports Ray only once it connects)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from berth.backends.base import Backend
from berth.backends.local import Liveness, LocalBackend
from berth.backends.process import Reveal
from berth.backends.ray import RayBackend, RayConfig
from berth.backends.ray_host import SandboxConfig
from berth.backends.zygotes import Zygotes
from berth.core.artifact_copies import ArtifactCopies
from berth.core.gpus import host_gpus
from berth.core.images import ImageRuntime
from berth.envs import replica_environment
from berth.sandbox import Sandbox
from berth.settings import Settings


class ServerBackend(Backend, Protocol):
    def describe(self) -> str:
        """One line for the server's log: where replicas run."""


class Local(LocalBackend):
    def describe(self) -> str:
        return "backend: local (sandboxed child processes of this server)"


def build_backend(
    settings: Settings,
    sandbox: Sandbox,
    images: ImageRuntime,
    reveal: Reveal,
    on_change: Callable[[], None],
) -> ServerBackend:
    probes = settings.replicas
    liveness = Liveness(probes.probe_period_s, probes.probe_timeout_s, probes.failure_threshold)
    if settings.backend == "ray":
        given = settings.sandbox
        return RayBackend(
            RayConfig(
                settings.ray.address,
                settings.ray.namespace,
                settings.ray.replica_cpus,
                settings.ray.replica_memory_mb,
                settings.ray.placement_timeout_s,
            ),
            SandboxConfig(
                str(settings.ray.work_dir),
                given.mode,
                given.run_as,
                (given.uid_range_start, given.uid_range_size),
                tuple(given.pass_env),
            ),
            replica_environment,
            on_change=on_change,
            reveal=reveal,
            liveness=liveness,
        )
    return Local(
        settings.home_dir / "replicas",
        sandbox,
        on_change=on_change,
        reveal=reveal,
        zygotes=Zygotes(settings.home_dir / "zygotes", sandbox, reveal),
        liveness=liveness,
        gpus=host_gpus(probes.gpus),
        images=images,
        copies=ArtifactCopies(settings.artifact_copies_dir),
    )
