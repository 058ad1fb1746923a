"""The gateway's ASGI application: ``/serving-endpoints/{name}/invocations`` (and ``/predict``).

A raw ASGI callable rather than framework routes: the hot path parses one path, checks one
hash in memory, and copies bytes through.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from typing import Any

from starlette.types import Receive, Scope, Send

from berth.core.access_log import AccessLog
from berth.core.dataplane import EndpointRoute, Snapshot, SnapshotBus
from berth.core.errors import (
    BadRequest,
    BerthError,
    DeadlineExceeded,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from berth.core.permissions import may
from berth.core.principal import Principal
from berth.core.usage import Outcome
from berth.gateway import guardrails, json_body, stages
from berth.gateway.admission import Admission, Demand, Slot
from berth.gateway.limits import Grant, Limiter, LocalLimiter, Refusal, buckets_for
from berth.gateway.llm import (
    MODELS_PATH,
    OPENAI_ALIASES,
    SSE_HEADERS,
    Llm,
    Served,
    base64_embeddings,
    end_stream_with_error,
    models_list,
    parse_json,
    replica_call,
    send_json,
)
from berth.gateway.openai_request import check_request
from berth.gateway.ratelimit_headers import LimitExceeded, quota_headers
from berth.gateway.tap import ResponseTap
from berth.gateway.token_estimate import estimate_tokens
from berth.gateway.upstream import ReplicaUnreachable, Upstream, UpstreamResponse
from berth.gateway.usage import UsageMeter
from berth.inference import CaptureWriter, PayloadRecord, sampled
from berth.metrics import Metrics
from berth.providers.base import ProviderOptions

PREFIX = "/serving-endpoints/"
PREDICT_LOG_HEADER = "x-berth-predict-log"
"""Asks the replica to log this model call (the endpoint's predict log is on)."""
ACTIONS = {"invocations", "predict"}
MAX_ATTEMPTS = 3

log = logging.getLogger(__name__)


class Gateway:
    def __init__(
        self,
        bus: SnapshotBus,
        *,
        limiter: Limiter | None = None,
        metrics: Metrics | None = None,
        capture: CaptureWriter | None = None,
        access_log: AccessLog | None = None,
        on_demand: Demand | None = None,
        cold_start_s: float = 30.0,
        request_timeout_s: float = 60.0,
        max_queue: int = 256,
        max_body_bytes: int = 16 * 1024 * 1024,
        providers: ProviderOptions | None = None,
    ) -> None:
        """``on_demand(endpoint, entity)`` is told when a request waits for an entity scaled
        to zero (the controller should start a replica now); such a request waits at most
        ``cold_start_s``."""
        self._bus = bus
        self._timeout = request_timeout_s
        self._max_body = max_body_bytes
        self.admission = Admission(
            max_queue,
            routes=lambda name: self._bus.current.endpoints.get(name),
            on_demand=on_demand,
            cold_start_s=cold_start_s,
        )
        self.upstream = Upstream()
        bus.subscribe(self._routes_changed)
        self.llm = Llm(options=providers)
        self.usage = UsageMeter(lambda: time.time_ns() // 1_000_000)
        self.limiter: Limiter = limiter or LocalLimiter()
        self.metrics = metrics or Metrics()
        self.capture = capture
        self.access_log = access_log

    def _routes_changed(self, snapshot: Snapshot) -> None:
        routed = {
            replica.replica_id: replica.address
            for route in snapshot.endpoints.values()
            for entity in route.entities
            for replica in entity.replicas
        }
        self.admission.routes_changed(set(routed))
        self.upstream.forget(set(routed.values()))

    def handles(self, path: str) -> bool:
        if path in OPENAI_ALIASES or path == MODELS_PATH:
            return True
        parts = path[len(PREFIX) :].split("/") if path.startswith(PREFIX) else []
        return len(parts) == 2 and parts[1] in ACTIONS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        arrived_ms = time.time_ns() // 1_000_000
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        timings = stages.begin(request_id)
        tap = ResponseTap(send, request_id)
        send = tap
        principal: Principal | None = None
        route: EndpointRoute | None = None
        body = b""
        request: dict[str, Any] | None = None
        error: str | None = None
        try:
            with stages.stage("auth"):
                principal = self._authenticate(scope)
            path = scope["path"]
            if path == MODELS_PATH:
                payload = json.dumps(models_list(self._bus.current, principal)).encode()
                await send_json(send, 200, payload, [])
                return
            if scope["method"] != "POST":
                raise BadRequest(f"Use POST on {path}.")
            body = await self._read_body(receive)
            operation = OPENAI_ALIASES.get(path)
            if operation is not None:
                request = parse_json(body)
                model = request.get("model")
                if not isinstance(model, str) or not model:
                    raise BadRequest(
                        "'model' must be the name of the serving endpoint to query, a string."
                    )
                route = self._route(model, principal)
                check_request(operation, request)
            else:
                route = self._route(path[len(PREFIX) :].split("/", 1)[0], principal)
            if route.policy.guardrails:
                body, request, send = guardrails.apply(route.policy.guardrails, body, request, send)
            if self.capture is not None and sampled(request_id, route.policy.capture):
                tap.keep_bytes = self.capture.max_body_bytes + 1  # one more shows truncation
            self.metrics.in_flight.labels(route.name).inc()
            try:
                served = await self._limited(
                    route, principal, operation, request, body, scope, send, started
                )
            finally:
                self.metrics.in_flight.labels(route.name).dec()
        except BerthError as exc:
            served = Served(status=exc.http_status)
            error = exc.message
            await _send_error(send, exc, started)
        except Exception as exc:  # the outer guard: a bug is a 500 in the Databricks shape
            log.exception("unexpected error answering %s (request %s)", scope["path"], request_id)
            served = Served(status=500)
            error = f"{type(exc).__name__}: {exc}"
            if tap.status:  # the answer had begun: it can only be cut short
                raise
            internal = BerthError(
                f"Internal error while answering (request id {request_id}); the server's log "
                "has the details."
            )
            await _send_error(send, internal, started)
        latency_ms = (time.perf_counter() - started) * 1000
        if route is not None and route.policy.access_log and self.access_log is not None:
            self.access_log.write(
                route.endpoint_id,  # by id: a later endpoint of the same name starts afresh
                {
                    "ts": arrived_ms,
                    "request_id": request_id,
                    "principal": principal.name if principal is not None else None,
                    "path": scope["path"],
                    "served_entity": served.entity,
                    "status": tap.status,
                    "latency_ms": round(latency_ms, 3),
                },
            )
        if tap.keep_bytes and route is not None and principal is not None and self.capture:
            self.capture.offer(
                PayloadRecord(
                    request_id=request_id,
                    client_request_id=_client_request_id(request, body),
                    endpoint=route.name,
                    served_entity=served.entity,
                    principal=principal.name,
                    timestamp_ms=arrived_ms,
                    status_code=tap.status,
                    latency_ms=latency_ms,
                    request=body,
                    response=tap.body,
                    input_tokens=served.input_tokens,
                    output_tokens=served.output_tokens,
                    error=error,
                ),
                route.policy.capture,
                folder=route.endpoint_id,
            )
        if route is not None:
            self._measure(route, served, latency_ms, timings)
        if route is not None and principal is not None and route.policy.track_usage:
            self.usage.record(
                Outcome(
                    route.endpoint_id,
                    served.entity,
                    principal.name,
                    served.status,
                    latency_ms,
                    served.input_tokens,
                    served.output_tokens,
                )
            )

    def _measure(
        self, route: EndpointRoute, served: Served, latency_ms: float, timings: dict[str, float]
    ) -> None:
        """Prometheus figures of one answered request."""
        m = self.metrics
        m.requests.labels(route.name, served.entity, str(served.status)).inc()
        m.duration.labels(route.name).observe(latency_ms / 1000)
        for name, seconds in timings.items():
            m.stage.labels(route.name, name).observe(seconds)
        if served.input_tokens:
            m.tokens.labels(route.name, "in").inc(served.input_tokens)
        if served.output_tokens:
            m.tokens.labels(route.name, "out").inc(served.output_tokens)
        m.queue_depth.labels(route.name).set(self.admission.queue_depth(route.name))

    async def _limited(
        self,
        route: EndpointRoute,
        principal: Principal,
        operation: str | None,
        request: dict[str, Any] | None,
        body: bytes,
        scope: Scope,
        send: Send,
        started: float,
    ) -> Served:
        """Serve within the endpoint's rate limits: admitted (reserving the request's token
        estimate) or refused with 429, and settled on the tokens really used."""
        with stages.stage("rate_limit"):
            admitted = await self._admit(route, principal, request, body)
        if admitted is None:
            return await self._serve(route, operation, request, body, scope, send, started, [])
        served = Served()
        try:
            headers = quota_headers(admitted.requests, admitted.tokens)
            served = await self._serve(
                route, operation, request, body, scope, send, started, headers
            )
            return served
        finally:
            await self.limiter.settle(admitted, served.input_tokens + served.output_tokens)

    async def _admit(
        self,
        route: EndpointRoute,
        principal: Principal,
        request: dict[str, Any] | None,
        body: bytes,
    ) -> Grant | None:
        """The limiter's grant, None when no limit applies; ``LimitExceeded`` when refused."""
        buckets = buckets_for(route.policy.rate_limits, route.endpoint_id, principal)
        if not buckets:
            return None
        estimate = 0
        if any(bucket.tokens is not None for bucket in buckets):
            estimate = estimate_tokens(request if request is not None else _json_or_none(body))
        admitted = await self.limiter.admit(buckets, estimate)
        if isinstance(admitted, Refusal):
            raise LimitExceeded(admitted)
        return admitted

    async def _serve(
        self,
        route: EndpointRoute,
        operation: str | None,
        request: dict[str, Any] | None,
        body: bytes,
        scope: Scope,
        send: Send,
        started: float,
        headers: list[tuple[bytes, bytes]],
    ) -> Served:
        """Answer from a provider or a replica, with ``headers`` added; what it came to."""
        external = self.llm.external_entity(route)
        if external is not None:
            timing = [*headers, (b"x-berth-overhead-ms", _ms_since(started))]
            request = request or parse_json(body)
            return await self.llm.serve(route, external, operation, request, send, timing)
        call = replica_call(body, request)
        if call.stream:
            return await self._forward_stream(route, call.body, scope, send, started, headers)
        entity, answer, upstream_ms = await self._forward(route, call.body, scope)
        served = Served(entity, answer.status)
        payload = answer.body
        served.count_json(payload)
        if call.base64 and answer.status == 200:
            payload = base64_embeddings(payload)
        overhead_ms = (time.perf_counter() - started) * 1000 - upstream_ms
        headers = [
            *headers,
            (b"served-model-name", entity.encode()),
            (b"content-type", answer.content_type.encode()),
            (b"content-length", str(len(payload)).encode()),
            (b"x-berth-overhead-ms", f"{overhead_ms:.3f}".encode()),
        ]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        return served

    def _authenticate(self, scope: Scope) -> Principal:
        for key, value in scope["headers"]:
            if key == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token:
                    digest = hashlib.sha256(token.strip().encode()).hexdigest()
                    principal = self._bus.current.tokens.get(digest)
                    if principal is not None:
                        return principal
                raise Unauthenticated("Invalid access token: it is unknown, revoked or expired.")
        raise Unauthenticated(
            "Missing credentials: send 'Authorization: Bearer <token>' with a berth token."
        )

    def _route(self, name: str, principal: Principal) -> EndpointRoute:
        route = self._bus.current.endpoints.get(name)
        if route is None:
            raise NotFound(f"Endpoint with name '{name}' does not exist.")
        if not may(principal, route.policy.queriers):
            raise PermissionDenied(
                f"'{principal.name}' does not have CAN_QUERY on serving endpoint '{name}'; "
                "someone with CAN_MANAGE on it, or an admin, can grant it."
            )
        return route

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise BadRequest(f"Request body is over the {self._max_body} byte limit.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _acquire(self, route: EndpointRoute, deadline: float) -> Slot:
        try:
            with stages.stage("queue_wait"):
                async with asyncio.timeout(max(deadline - time.perf_counter(), 0.001)):
                    return await self.admission.acquire(route)
        except TimeoutError as exc:
            raise DeadlineExceeded(
                f"No replica of '{route.name}' became free within {self._timeout:.0f}s."
            ) from exc

    async def _forward(
        self, route: EndpointRoute, body: bytes, scope: Scope
    ) -> tuple[str, UpstreamResponse, float]:
        """Send to a replica; a replica that answered nothing is retried on another one.

        Also returns the replica's own time, which ``x-berth-overhead-ms`` leaves out.
        """
        headers = _replica_headers(scope, route)
        deadline = time.perf_counter() + self._timeout
        for attempt in range(1, MAX_ATTEMPTS + 1):
            slot = await self._acquire(route, deadline)
            sent = time.perf_counter()
            try:
                with stages.stage("upstream"):
                    answer = await self.upstream.post(
                        slot.replica.address,
                        "/invocations",
                        body,
                        headers,
                        max(deadline - sent, 0.001),
                    )
                if answer.batch_ms is not None:
                    stages.add("batching", answer.batch_ms / 1000)
                if answer.replica_ms is None:  # a replica that does not time itself
                    return slot.entity.name, answer, (time.perf_counter() - sent) * 1000
                return slot.entity.name, answer, answer.replica_ms
            except ReplicaUnreachable:
                self.admission.mark_down(slot.replica.replica_id)
                if attempt == MAX_ATTEMPTS:
                    raise
                route = self._bus.current.endpoints.get(route.name, route)
            finally:
                self.admission.release(slot)
        raise AssertionError("unreachable")

    async def _forward_stream(
        self,
        route: EndpointRoute,
        body: bytes,
        scope: Scope,
        send: Send,
        started: float,
        extra: list[tuple[bytes, bytes]],
    ) -> Served:
        """Relay a replica's server-sent events as they come, holding its slot to the end.

        Until the first byte goes out, failures are ordinary error answers (and a replica
        that answered nothing is retried); after it, a failure ends the stream with an error
        event, since the status line is already sent.
        """
        forwarded = _replica_headers(scope, route)
        deadline = time.perf_counter() + self._timeout
        for attempt in range(1, MAX_ATTEMPTS + 1):
            slot = await self._acquire(route, deadline)
            headers = [
                *extra,
                (b"served-model-name", slot.entity.name.encode()),
                (b"x-berth-overhead-ms", _ms_since(started)),
            ]
            served = Served(slot.entity.name)
            try:
                opened = time.perf_counter()
                async with self.upstream.stream(
                    slot.replica.address, "/invocations", body, forwarded, self._timeout
                ) as answer:
                    stages.add("upstream", time.perf_counter() - opened)
                    served.status = answer.status
                    if answer.status != 200 or answer.content_type != "text/event-stream":
                        await send_json(send, answer.status, await answer.read(), headers)
                        return served
                    start = {"type": "http.response.start", "status": 200}
                    await send({**start, "headers": [*headers, *SSE_HEADERS]})
                    with stages.stage("streaming"):
                        async for chunk in answer.content.iter_any():
                            served.count_events(chunk)
                            more = {"body": chunk, "more_body": True}
                            await send({"type": "http.response.body", **more})
                await send({"type": "http.response.body", "body": b""})
                return served
            except BerthError as exc:
                if served.status == 200:  # the status line is out: end the stream instead
                    await end_stream_with_error(send, exc)
                    return served
                if not isinstance(exc, ReplicaUnreachable) or attempt == MAX_ATTEMPTS:
                    raise
                self.admission.mark_down(slot.replica.replica_id)
                route = self._bus.current.endpoints.get(route.name, route)
            finally:
                self.admission.release(slot)
        raise AssertionError("unreachable")

    async def drain(self, replica_id: str, timeout_s: float = 30.0) -> None:
        """Return once no request of this process is in flight on ``replica_id``."""
        deadline = time.monotonic() + timeout_s
        while self.admission.outstanding.get(replica_id, 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.upstream.close()
        await self.llm.close()
        await self.limiter.aclose()


def _replica_headers(scope: Scope, route: EndpointRoute) -> dict[str, str]:
    headers = {
        "content-type": _header(scope, b"content-type") or "application/json",
        "x-request-id": stages.request_id(),
    }
    if route.policy.predict_log:
        headers[PREDICT_LOG_HEADER] = "1"
    return headers


def _client_request_id(request: dict[str, Any] | None, body: bytes) -> str | None:
    """The caller's own id for the request: a ``client_request_id`` in the JSON body."""
    if request is None and b'"client_request_id"' in body:
        request = _json_or_none(body)
    found = (request or {}).get("client_request_id")
    return str(found) if found is not None else None


def _json_or_none(body: bytes) -> dict[str, Any] | None:
    """An invocations body as a JSON object, when it is one (for its token estimate)."""
    try:
        parsed = json_body.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _ms_since(started: float) -> bytes:
    return f"{(time.perf_counter() - started) * 1000:.3f}".encode()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _send_error(send: Send, exc: BerthError, started: float) -> None:
    payload = _error_body(exc)
    headers = [
        *(exc.quota_headers() if isinstance(exc, LimitExceeded) else []),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"x-berth-overhead-ms", _ms_since(started)),
    ]
    if exc.retry_after is not None:
        headers.append((b"retry-after", str(exc.retry_after).encode()))
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _error_body(exc: BerthError) -> bytes:
    """The Databricks error, with OpenAI's ``error`` object beside it for OpenAI clients."""
    body: dict[str, object] = {
        **exc.to_json(),
        "error": {"message": exc.message, "type": exc.error_code, "code": exc.error_code},
    }
    return json.dumps(body).encode()
