"""What the gateway keeps of each answered query: the access log, the captured payload, the
Prometheus figures and the per-minute usage sums (the metrics history's too). Runs once per
request, after its answer is sent."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from berth.core.access_log import AccessLog
from berth.core.dataplane import EndpointRoute, ReplicaProtocol
from berth.core.usage import UNATTRIBUTED, Outcome
from berth.gateway.exchange import Exchange
from berth.gateway.usage import UsageMeter
from berth.inference import CaptureWriter, PayloadRecord, sampled
from berth.metrics import Metrics


class Queues(Protocol):
    """What waits in the gateway now, read as each request is recorded."""

    def queue_depth(self, endpoint: str) -> int:
        """Requests waiting for a free replica of ``endpoint``."""
        ...

    def engine_load(self, endpoint: str, entity: str) -> tuple[int, int]:
        """An open LLM's requests queued and engine slots in use."""
        ...


class Recorder:
    def __init__(
        self,
        metrics: Metrics,
        *,
        capture: CaptureWriter | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.metrics = metrics
        self.capture = capture
        self.access_log = access_log
        self.usage = UsageMeter(lambda: time.time_ns() // 1_000_000)

    async def close(self) -> None:
        """Write what the capture holds and close the access logs."""
        if self.capture is not None:
            await asyncio.to_thread(self.capture.close)
        if self.access_log is not None:
            self.access_log.close()

    def sample(self, ex: Exchange, route: EndpointRoute) -> None:
        """Decide now whether ``ex`` is captured, so its answer's bytes are kept as sent."""
        if self.capture is not None and sampled(ex.request_id, route.policy.capture):
            ex.tap.keep_bytes = self.capture.max_body_bytes + 1  # one more shows truncation

    def record(self, ex: Exchange, queues: Queues) -> None:
        route = ex.route
        if route is None:
            return
        latency_ms = ex.elapsed_ms()
        if route.policy.access_log and self.access_log is not None:
            self._log_access(ex, route, latency_ms)
        if ex.tap.keep_bytes and ex.principal is not None and self.capture is not None:
            self._capture(ex, route, latency_ms, self.capture)
        self._measure(ex, route, latency_ms)
        self.metrics.queue_depth.labels(route.name).set(queues.queue_depth(route.name))
        self._engine_gauges(ex, route, queues)
        # Every request counts for the metrics history; only tracked ones name their caller.
        served = ex.served
        caller = ex.principal
        self.usage.record(
            Outcome(
                route.endpoint_id,
                served.entity,
                caller.name if caller is not None and route.policy.track_usage else UNATTRIBUTED,
                served.status,
                latency_ms,
                served.input_tokens,
                served.output_tokens,
            )
        )

    def _log_access(self, ex: Exchange, route: EndpointRoute, latency_ms: float) -> None:
        assert self.access_log is not None
        self.access_log.write(
            route.endpoint_id,  # by id: a later endpoint of the same name starts afresh
            {
                "ts": ex.arrived_ms,
                "request_id": ex.request_id,
                "principal": ex.principal.name if ex.principal is not None else None,
                "path": ex.path,
                "served_entity": ex.served.entity,
                "status": ex.tap.status,
                "latency_ms": round(latency_ms, 3),
                "prompt_tokens": ex.served.input_tokens,
                "completion_tokens": ex.served.output_tokens,
                "ttft_ms": _rounded(ex.served.ttft_ms),
                "itl_ms": _rounded(ex.served.itl_ms),
            },
        )

    def _capture(
        self, ex: Exchange, route: EndpointRoute, latency_ms: float, capture: CaptureWriter
    ) -> None:
        assert ex.principal is not None
        capture.offer(
            PayloadRecord(
                request_id=ex.request_id,
                client_request_id=ex.client_request_id(),
                endpoint=route.name,
                served_entity=ex.served.entity,
                principal=ex.principal.name,
                timestamp_ms=ex.arrived_ms,
                status_code=ex.tap.status,
                latency_ms=latency_ms,
                request=ex.body,
                response=ex.tap.body,
                input_tokens=ex.served.input_tokens,
                output_tokens=ex.served.output_tokens,
                ttft_ms=ex.served.ttft_ms,
                itl_ms=ex.served.itl_ms,
                error=ex.error,
            ),
            route.policy.capture,
            folder=route.endpoint_id,
        )

    def _measure(self, ex: Exchange, route: EndpointRoute, latency_ms: float) -> None:
        m = self.metrics
        served = ex.served
        m.requests.labels(route.name, served.entity, str(served.status)).inc()
        m.duration.labels(route.name).observe(latency_ms / 1000)
        for name, seconds in ex.timings.items():
            m.stage.labels(route.name, name).observe(seconds)
        if served.input_tokens:
            m.tokens.labels(route.name, served.entity, "in").inc(served.input_tokens)
        if served.output_tokens:
            m.tokens.labels(route.name, served.entity, "out").inc(served.output_tokens)
        if served.ttft_ms is not None:
            m.ttft.labels(route.name, served.entity).observe(served.ttft_ms / 1000)
        if served.itl_ms is not None:
            m.itl.labels(route.name, served.entity).observe(served.itl_ms / 1000)

    def _engine_gauges(self, ex: Exchange, route: EndpointRoute, queues: Queues) -> None:
        """An open LLM's queue and busy slots, as of this request's end."""
        entity = next((e for e in route.entities if e.name == ex.served.entity), None)
        if entity is None or entity.protocol is not ReplicaProtocol.OPENAI:
            return
        queued, in_use = queues.engine_load(route.name, entity.name)
        self.metrics.llm_queue_depth.labels(route.name, entity.name).set(queued)
        self.metrics.llm_slots.labels(route.name, entity.name).set(in_use)


def _rounded(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 3)
