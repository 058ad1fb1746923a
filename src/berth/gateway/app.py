"""The gateway's ASGI application: ``/serving-endpoints/{name}/invocations`` (and ``/predict``),
a custom container's raw invoke (``/serving-endpoints/{name}/invoke/{path}``), the OpenAI routes
and the models list.

A raw ASGI callable rather than framework routes: the hot path parses one path, checks one
hash in memory, and copies bytes through. Each query is an `Exchange` walked through
``authenticate → route → limit → serve → record``; whatever escapes a stage is answered in
the Databricks error shape (the outer guard).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from starlette.types import Receive, Scope, Send

from berth.core.dataplane import EndpointRoute, Snapshot, SnapshotBus
from berth.core.errors import BadRequest, BerthError, NotFound, PermissionDenied, Unauthenticated
from berth.core.load import EntityKey, EntityLoad
from berth.core.permissions import may
from berth.core.principal import Principal
from berth.gateway import guardrails, stages
from berth.gateway.admission import Admission, Demand
from berth.gateway.band import Bands
from berth.gateway.exchange import Exchange, Served
from berth.gateway.limits import Limiter, LocalLimiter, Refusal, buckets_for
from berth.gateway.llm import MODELS_PATH, OPENAI_ALIASES, Llm, models_list
from berth.gateway.openai_request import check_request
from berth.gateway.ratelimit_headers import LimitExceeded, quota_headers
from berth.gateway.recording import Recorder
from berth.gateway.replicas import ReplicaPath, no_raw_invoke
from berth.gateway.responses import Headers, send_error, send_json
from berth.gateway.token_estimate import estimate_tokens
from berth.gateway.upstream import ReplicaTransport
from berth.metrics import Metrics

PREFIX = "/serving-endpoints/"
ACTIONS = {"invocations", "predict"}
INVOKE = "invoke"

log = logging.getLogger(__name__)


class Gateway:
    def __init__(
        self,
        bus: SnapshotBus,
        transport: ReplicaTransport,
        *,
        llm: Llm | None = None,
        limiter: Limiter | None = None,
        recorder: Recorder | None = None,
        on_demand: Demand | None = None,
        cold_start_s: float = 30.0,
        request_timeout_s: float = 60.0,
        max_queue: int = 256,
        band_queue_s: float = 5.0,
        max_body_bytes: int = 16 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``transport`` reaches replicas (`build_gateway` gives the real one).

        ``on_demand(endpoint, entity)`` is told when a request waits for an entity scaled
        to zero (the controller should start a replica now); such a request waits at most
        ``cold_start_s``. A request for an entity with provisioned throughput waits for its
        band at most ``band_queue_s`` by the band's current rate (429 past it); the bands
        refill by ``clock``."""
        self._bus = bus
        self._max_body = max_body_bytes
        self.admission = Admission(
            max_queue,
            routes=lambda name: self._bus.current.endpoints.get(name),
            on_demand=on_demand,
            cold_start_s=cold_start_s,
        )
        self.bands = Bands(band_queue_s, clock)
        self.replicas = ReplicaPath(self.admission, transport, request_timeout_s, self.bands)
        self.llm = llm or Llm()
        self.limiter: Limiter = limiter or LocalLimiter()
        self.recorder = recorder or Recorder(Metrics())
        bus.subscribe(self._routes_changed)

    @property
    def metrics(self) -> Metrics:
        return self.recorder.metrics

    def _routes_changed(self, snapshot: Snapshot) -> None:
        routed = {
            replica.replica_id: replica.address
            for route in snapshot.endpoints.values()
            for entity in route.entities
            for replica in entity.replicas
        }
        self.admission.routes_changed(set(routed))
        self.bands.routes_changed(snapshot)
        self.replicas.transport.forget(set(routed.values()))

    def load(self) -> dict[EntityKey, EntityLoad]:
        """Each served entity's demand as this process sees it, for the autoscaler."""
        load = self.admission.load()
        for key, (band_s, band_queued_s) in self.bands.load().items():
            load[key] = replace(
                load.get(key) or EntityLoad(), band_s=band_s, band_queued_s=band_queued_s
            )
        return load

    def queue_depth(self, endpoint: str) -> int:
        """Requests waiting for a free replica of ``endpoint`` now."""
        return self.admission.queue_depth(endpoint)

    def engine_load(self, endpoint: str, entity: str) -> tuple[int, int]:
        """An open LLM's requests queued (for its band or a replica slot) and engine slots in
        use, now, as this process sees them."""
        counted = self.admission.entity_load(endpoint, entity)
        return counted.waiting + self.bands.waiting(endpoint, entity), counted.in_flight

    def handles(self, path: str) -> bool:
        if path in OPENAI_ALIASES or path == MODELS_PATH:
            return True
        parts = path[len(PREFIX) :].split("/") if path.startswith(PREFIX) else []
        return (len(parts) == 2 and parts[1] in ACTIONS) or (len(parts) > 2 and parts[1] == INVOKE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ex = Exchange(scope, receive, send)
        try:
            await self._walk(ex)
        except BerthError as exc:
            ex.served = Served(ex.served.entity, exc.http_status)
            ex.error = exc.message
            await send_error(ex.send, exc, ex.started)
        except Exception as exc:  # the outer guard: a bug is a 500 in the Databricks shape
            log.exception("unexpected error answering %s (request %s)", ex.path, ex.request_id)
            ex.served = Served(status=500)
            ex.error = f"{type(exc).__name__}: {exc}"
            if ex.tap.status:  # the answer had begun: it can only be cut short
                raise
            internal = BerthError(
                f"Internal error while answering (request id {ex.request_id}); the server's "
                "log has the details."
            )
            await send_error(ex.send, internal, ex.started)
        self.recorder.record(ex, self)

    async def _walk(self, ex: Exchange) -> None:
        with stages.stage("auth"):
            ex.principal = self._authenticate(ex.scope)
        if ex.path == MODELS_PATH:
            payload = json.dumps(models_list(self._bus.current, ex.principal)).encode()
            await send_json(ex.send, 200, payload, [])
            return
        route = await self._route(ex, ex.principal)
        in_flight = self.metrics.in_flight.labels(route.name)
        in_flight.inc()
        try:
            async with self._limited(ex, route, ex.principal) as headers:
                ex.served = await self._serve(ex, route, headers)
        finally:
            in_flight.dec()

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

    async def _route(self, ex: Exchange, principal: Principal) -> EndpointRoute:
        """The endpoint the query is for, once the caller may query it; its body is read,
        checked on the OpenAI routes, and passed through the endpoint's guardrails."""
        ex.operation = OPENAI_ALIASES.get(ex.path)
        if ex.operation is None:
            ex.invoke = _invoke_path(ex.scope)
        if ex.scope["method"] != "POST" and (ex.invoke is None or ex.scope["method"] != "GET"):
            raise BadRequest(f"Use {'GET or ' if ex.invoke else ''}POST on {ex.path}.")
        await ex.read_body(self._max_body)
        if ex.operation is not None:
            request = ex.json_object()
            model = request.get("model")
            if not isinstance(model, str) or not model:
                raise BadRequest(
                    "'model' must be the name of the serving endpoint to query, a string."
                )
            route = self._permitted(model, principal)
            check_request(ex.operation, request)
        else:
            route = self._permitted(ex.path[len(PREFIX) :].split("/", 1)[0], principal)
            if ex.invoke is not None:
                _check_raw_invoke(route)
        ex.route = route
        if route.policy.guardrails:
            body, parsed, ex.send = guardrails.apply(
                route.policy.guardrails, ex.body, ex.parsed(), ex.send
            )
            ex.replace_body(body, parsed)
        self.recorder.sample(ex, route)
        return route

    def _permitted(self, name: str, principal: Principal) -> EndpointRoute:
        route = self._bus.current.endpoints.get(name)
        if route is None:
            raise NotFound(f"Endpoint with name '{name}' does not exist.")
        if not may(principal, route.policy.queriers):
            raise PermissionDenied(
                f"'{principal.name}' does not have CAN_QUERY on serving endpoint '{name}'; "
                "someone with CAN_MANAGE on it, or an admin, can grant it."
            )
        return route

    @contextlib.asynccontextmanager
    async def _limited(
        self, ex: Exchange, route: EndpointRoute, principal: Principal
    ) -> AsyncIterator[Headers]:
        """Within the endpoint's rate limits: admitted (reserving the request's token
        estimate; the quota headers are yielded) or refused with 429, and settled on the
        tokens really used."""
        with stages.stage("rate_limit"):  # timed with no limit too: every stage counts all
            buckets = buckets_for(route.policy.rate_limits, route.endpoint_id, principal)
            admitted = None
            if buckets:
                estimate = 0
                if any(bucket.tokens is not None for bucket in buckets):
                    estimate = estimate_tokens(ex.json_or_none())
                admitted = await self.limiter.admit(buckets, estimate)
        if admitted is None:
            yield []
            return
        if isinstance(admitted, Refusal):
            raise LimitExceeded(admitted)
        try:
            yield quota_headers(admitted.requests, admitted.tokens)
        finally:
            used = ex.served.input_tokens + ex.served.output_tokens
            await self.limiter.settle(admitted, used)

    async def _serve(self, ex: Exchange, route: EndpointRoute, headers: Headers) -> Served:
        """Answer from a provider or a replica, with ``headers`` added; what it came to."""
        external = self.llm.external_entity(route)
        if external is None:
            return await self.replicas.serve(ex, headers)
        timing = [*headers, (b"x-berth-overhead-ms", f"{ex.elapsed_ms():.3f}".encode())]
        return await self.llm.serve(ex, external, timing)

    async def drain(self, replica_id: str, timeout_s: float = 30.0) -> None:
        """Return once no request of this process is in flight on ``replica_id``."""
        deadline = time.monotonic() + timeout_s
        while self.admission.outstanding.get(replica_id, 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.replicas.close()
        await self.llm.close()
        await self.limiter.aclose()
        await self.recorder.close()


def _invoke_path(scope: Scope) -> str | None:
    """On ``/serving-endpoints/{name}/invoke/{path}``: ``/{path}`` as the caller encoded it,
    with its query string; None on any other route."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    parts = raw.split(b"/", 4)
    if len(parts) < 5 or parts[3] != INVOKE.encode():
        return None
    query: bytes = scope.get("query_string", b"")
    return "/" + (parts[4] + (b"?" + query if query else b"")).decode("latin-1")


def _check_raw_invoke(route: EndpointRoute) -> None:
    """Raw invoke is for custom containers that allow it; an endpoint with none is a 404
    before any limit counts it (a traffic split with some is checked per replica)."""
    if not any(e.container is not None and e.container.raw_invoke for e in route.entities):
        raise no_raw_invoke(route.name)
