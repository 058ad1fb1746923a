"""What the API routes need, built once by the composition root and kept on ``app.state``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from berth.core.artifact_copies import ArtifactCopies
from berth.core.clock import Clock
from berth.core.dataplane import SnapshotBus
from berth.core.images import NO_IMAGES, ImageRuntime
from berth.core.load import LoadReport
from berth.core.throughput import Calibration, CalibrationProgress
from berth.identity.tokens import TokenService
from berth.metrics import Metrics
from berth.providers.egress import Egress
from berth.registry.garden import Garden
from berth.registry.service import Registry
from berth.sandbox import Sandbox
from berth.secrets import SecretsService
from berth.secrets.sealed_snapshot import SealedSnapshots
from berth.settings import Settings
from berth.store.db import Database


class ControllerPort(Protocol):
    """What the API may ask of the controller: it never touches replicas itself."""

    def nudge(self) -> None:
        """Reconcile soon: desired state changed."""

    def logs(self, endpoint: str, served_entity: str) -> str | None:
        """The tail of one served entity's replica output."""

    def scale(self, endpoint: str) -> Mapping[tuple[int, str], tuple[int, int]]:
        """(config version, served entity) → (replicas ready, replicas wanted)."""

    def report_load(self, source: str, report: LoadReport) -> None:
        """Demand seen by the gateway process ``source``, for the autoscaler."""


class ThroughputPort(Protocol):
    """Open LLMs' throughput chunks on this host, which the controller measures. Called from
    the API's worker threads, never on the event loop: ``calibrated`` blocks."""

    def stored(self, model: str, version: str) -> Calibration | None:
        """The version's chunk as calibrated here; None if not (or not an open LLM)."""

    def calibrated(self, model: str, version: str) -> Calibration:
        """The stored chunk, else one measured now (tens of seconds); raises
        ``InvalidParameter`` when the version cannot be calibrated."""

    def recalibrate(self, model: str, version: str) -> CalibrationProgress:
        """Measure again (or join the run going); answers at once."""

    def progress(self, model: str, version: str) -> CalibrationProgress | None:
        """The run going, or the last one since the server started."""


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    db: Database
    clock: Clock
    tokens: TokenService
    registry: Registry
    artifact_copies: ArtifactCopies
    """Folders on this machine of the artifacts that registration stored (`registry`)."""
    garden: Garden
    controller: ControllerPort
    bus: SnapshotBus
    sealed_snapshots: SealedSnapshots
    """The bus's snapshots sealed and encoded, once per version, for the data-plane route."""
    secrets: SecretsService
    metrics: Metrics
    throughput: ThroughputPort
    egress: Egress = Egress()
    """Where provider URLs may point (checked when a config is stored)."""
    sandbox: Sandbox | None = None
    """Where environment builds at registration run (None: unconfined, in tests of parts)."""
    images: ImageRuntime = NO_IMAGES
    """What runs container versions' images here, found once at startup."""
    server_id: str = ""
    """This server's id in the controller lease (``$BERTH_HOME/server-id``)."""
