"""`build_gateway`: the one way a process that answers queries makes its gateway, from the
settings (``berth serve``, ``berth gateway`` and each ``--gateway-workers`` worker)."""

from __future__ import annotations

from berth.core.access_log import AccessLog
from berth.core.dataplane import SnapshotBus
from berth.gateway.admission import Demand
from berth.gateway.app import Gateway
from berth.gateway.limits import limiter_for
from berth.gateway.llm import Llm
from berth.gateway.recording import Recorder
from berth.gateway.upstream import Upstream
from berth.inference import CaptureWriter
from berth.metrics import Metrics
from berth.providers.base import ProviderOptions
from berth.providers.egress import egress_of
from berth.settings import Settings


def build_gateway(
    settings: Settings,
    bus: SnapshotBus,
    *,
    metrics: Metrics,
    on_demand: Demand,
) -> Gateway:
    """A gateway following ``bus``, capturing payloads under ``inference/`` and writing access
    logs under ``logs/`` of ``$BERTH_SHARED_DIR`` or ``$BERTH_HOME`` (its ``close`` closes
    both)."""
    capture = CaptureWriter(settings.inference_dir, on_tally=metrics.count_capture)
    return Gateway(
        bus,
        Upstream(),
        llm=Llm(options=ProviderOptions(egress=egress_of(settings))),
        limiter=limiter_for(settings.redis_url),
        recorder=Recorder(metrics, capture=capture, access_log=AccessLog(settings.logs_dir)),
        on_demand=on_demand,
        cold_start_s=settings.autoscaling.cold_start_timeout_s,
        band_queue_s=settings.autoscaling.band_queue_s,
    )
