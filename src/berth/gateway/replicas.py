"""The replica path: a query answered by one of its endpoint's model replicas, whole or as
relayed server-sent events, with the replica retried when it answered nothing; a query for an
open LLM served with provisioned throughput first reserves its tokens of the band (`band`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from berth.core.dataplane import EndpointRoute, EntityRoute, ReplicaProtocol
from berth.core.errors import BerthError, DeadlineExceeded, InvalidParameter, NotFound
from berth.gateway import json_body, stages
from berth.gateway.admission import Admission, Slot
from berth.gateway.band import Bands, Reservation
from berth.gateway.exchange import Exchange, Served, header
from berth.gateway.responses import (
    OVERHEAD_HEADER,
    SSE_HEADERS,
    Headers,
    end_stream_with_error,
    ms_since,
    send_body,
    send_json,
)
from berth.gateway.retry import on_a_replica
from berth.gateway.stream_watch import StreamWatch
from berth.gateway.token_estimate import estimate_tokens
from berth.gateway.upstream import ReplicaTransport
from berth.providers.shapes import embeddings_response

PREDICT_LOG_HEADER = "x-berth-predict-log"
"""Asks the replica to log this model call (the endpoint's predict log is on)."""
RUNTIME_PATH = "/invocations"
ENGINE_PATHS = {
    "chat": "/v1/chat/completions",
    "completions": "/v1/completions",
    "embeddings": "/v1/embeddings",
}
"""Where an inference engine answers each kind of LLM body."""


@dataclass(frozen=True, slots=True)
class ReplicaCall:
    """A body on its way to a model replica, and what the answer then needs."""

    body: bytes
    stream: bool = False
    base64: bool = False
    """The caller asked for base64 embeddings; models answer floats."""
    path: str = RUNTIME_PATH
    verbatim: bool = False
    """The answer goes back as the server gave it (status, body, content type): a custom
    container's predict route or raw invoke."""
    method: str = "POST"
    """``GET`` only for a raw invoke that asked it."""


def replica_call(body: bytes, parsed: dict[str, Any] | None, *, openai: bool) -> ReplicaCall:
    """An OpenAI-route request (``openai``) loses ``model`` (the endpoint's name, not the
    model's input); any JSON body loses ``encoding_format``, which berth applies to the answer.
    Other bodies go through untouched, and unparsed unless they may ask for a stream."""
    request = parsed
    if request is None:
        if not openai and b'"stream"' not in body and b'"encoding_format"' not in body:
            return ReplicaCall(body)
        with contextlib.suppress(ValueError):
            request = json_body.loads(body)
        if not isinstance(request, dict):
            return ReplicaCall(body)
    if not openai and "encoding_format" not in request:
        return ReplicaCall(body, stream=request.get("stream") is True)
    adapted = {
        k: v for k, v in request.items() if k != "encoding_format" and (k != "model" or not openai)
    }
    return ReplicaCall(
        json.dumps(adapted).encode(),
        stream=adapted.get("stream") is True,
        base64=request.get("encoding_format") == "base64",
    )


def engine_call(request: dict[str, Any], operation: str | None) -> ReplicaCall:
    """The body for an inference engine (an open LLM's replica), on the route for its kind:
    the OpenAI route's, or for ``invocations`` the Databricks chat (``messages``), completions
    (``prompt``) or embeddings (``input``) body it is. It loses ``model`` and
    ``encoding_format``; a stream always asks for its usage, which berth counts and settles
    token reservations on."""
    kind = operation or next((k for k, key in _ENGINE_INPUTS if key in request), None)
    if kind is None:
        raise InvalidParameter(
            "This endpoint serves an open LLM: send a chat body (`messages`), a completions "
            "body (`prompt`) or an embeddings body (`input`)."
        )
    adapted = {k: v for k, v in request.items() if k not in ("model", "encoding_format")}
    stream = adapted.get("stream") is True
    if stream:
        options = adapted.get("stream_options")
        adapted["stream_options"] = {
            **(options if isinstance(options, dict) else {}),
            "include_usage": True,
        }
    return ReplicaCall(
        json.dumps(adapted).encode(),
        stream=stream,
        base64=request.get("encoding_format") == "base64",
        path=ENGINE_PATHS[kind],
    )


_ENGINE_INPUTS = (("chat", "messages"), ("completions", "prompt"), ("embeddings", "input"))


def engine_error(status: int, payload: bytes) -> bytes:
    """An engine's OpenAI-shaped error (``{"error": {"message"}}``) in the Databricks shape."""
    message = payload.decode(errors="replace")
    with contextlib.suppress(ValueError):
        parsed = json_body.loads(payload)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            message = str(parsed["error"].get("message") or message)
    code = "BAD_REQUEST" if 400 <= status < 500 else "INTERNAL_ERROR"
    return json.dumps(
        {"error_code": code, "message": f"The model engine refused: {message}"}
    ).encode()


def whole_answer(
    served: Served, protocol: ReplicaProtocol, call: ReplicaCall, status: int, payload: bytes
) -> bytes:
    """A whole answer as the caller gets it: an engine's error in the Databricks shape, the
    usage it reports counted on ``served``, embeddings in base64 where asked."""
    if status != 200 and protocol is ReplicaProtocol.OPENAI:
        payload = engine_error(status, payload)
    served.count_json(payload)
    if call.base64 and status == 200:
        payload = base64_embeddings(payload)
    return payload


def base64_embeddings(payload: bytes) -> bytes:
    """An OpenAI embeddings answer with its vectors as base64; any other answer as it is."""
    try:
        parsed = json_body.loads(payload)
    except ValueError:
        return payload
    if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), list):
        return payload
    return json.dumps(embeddings_response(parsed, "base64")).encode()


class ReplicaPath:
    """Answers queries from replicas reached through ``transport``."""

    def __init__(
        self, admission: Admission, transport: ReplicaTransport, timeout_s: float, bands: Bands
    ) -> None:
        self.admission = admission
        self.transport = transport
        self.bands = bands
        self._timeout = timeout_s

    async def serve(self, ex: Exchange, headers: Headers) -> Served:
        """Answer ``ex`` with ``headers`` added; what it came to. Where the endpoint has a
        provisioned entity, the entity is chosen first, so its band is reserved before a slot
        of one of its replicas is waited for."""
        route = ex.route
        assert route is not None
        if not any(e.provisioned is not None for e in route.entities):
            return await self._on_a_replica(ex, route, headers, None, self._timeout)
        entity = self.admission.pick(route)
        if entity.provisioned is None:
            return await self._on_a_replica(ex, route, headers, entity.name, self._timeout)
        ex.served.entity = entity.name  # a refusal is the entity's
        estimate = estimate_tokens(ex.json_or_none())
        waited = time.perf_counter()
        reservation = await self._reserve(route, entity, estimate)
        left_s = self._timeout - (time.perf_counter() - waited)
        try:
            served = await self._on_a_replica(ex, route, headers, entity.name, left_s)
        except BerthError:  # nothing was generated
            self.bands.settle(reservation, 0)
            raise
        except BaseException:  # e.g. the caller left mid-stream: what was reserved is spent
            self.bands.settle(reservation, estimate)
            raise
        used = served.input_tokens + served.output_tokens
        if not used and served.status == 200:  # an answer that did not report its usage
            used = estimate
        self.bands.settle(reservation, used)
        return served

    async def _reserve(self, route: EndpointRoute, entity: EntityRoute, tokens: int) -> Reservation:
        try:
            with stages.stage("band_wait"):
                async with asyncio.timeout(self._timeout):
                    return await self.bands.reserve(route.name, entity, tokens)
        except TimeoutError as exc:
            raise DeadlineExceeded(
                f"Served entity '{entity.name}' of '{route.name}' had no provisioned throughput "
                f"free for this request within {self._timeout:.0f}s."
            ) from exc

    async def _on_a_replica(
        self,
        ex: Exchange,
        route: EndpointRoute,
        headers: Headers,
        entity: str | None,
        timeout_s: float,
    ) -> Served:
        calls = _Calls(ex, route)
        forwarded = _replica_headers(ex, route)
        if calls.stream:
            return await on_a_replica(
                self.admission,
                route,
                timeout_s,
                lambda slot: self._relay(ex, slot, calls.for_slot(slot), forwarded, headers),
                entity,
            )
        return await on_a_replica(
            self.admission,
            route,
            timeout_s,
            lambda slot: self._answer(ex, slot, calls.for_slot(slot), forwarded, headers),
            entity,
        )

    async def _answer(
        self,
        ex: Exchange,
        slot: Slot,
        call: ReplicaCall,
        forwarded: dict[str, str],
        headers: Headers,
    ) -> Served:
        """The replica's whole answer, sent on; ``x-berth-overhead-ms`` leaves out the
        replica's own time."""
        sent = time.perf_counter()
        with stages.stage("upstream"):
            answer = await self.transport.post(
                slot.replica.address,
                call.path,
                call.body,
                forwarded,
                max(self._timeout - (sent - ex.started), 0.001),
            )
        if answer.batch_ms is not None:
            stages.add("batching", answer.batch_ms / 1000)
        upstream_ms = answer.replica_ms
        if upstream_ms is None:  # a replica that does not time itself
            upstream_ms = (time.perf_counter() - sent) * 1000
        served = Served(slot.entity.name, answer.status)
        payload = whole_answer(served, slot.entity.protocol, call, answer.status, answer.body)
        elapsed_ms = ex.elapsed_ms()
        if served.output_tokens:
            served.ttft_ms = elapsed_ms  # every token comes with the answer
        overhead_ms = elapsed_ms - upstream_ms
        await ex.send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    *headers,
                    (b"served-model-name", slot.entity.name.encode()),
                    (b"content-type", answer.content_type.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (OVERHEAD_HEADER, f"{overhead_ms:.3f}".encode()),
                ],
            }
        )
        await ex.send({"type": "http.response.body", "body": payload})
        return served

    async def _relay(
        self,
        ex: Exchange,
        slot: Slot,
        call: ReplicaCall,
        forwarded: dict[str, str],
        extra: Headers,
    ) -> Served:
        """Relay the replica's events as they come, holding its slot to the end.

        Until the first byte goes out, failures are ordinary error answers (and a replica
        that answered nothing is retried); after it, a failure ends the stream with an error
        event, since the status line is already sent.
        """
        headers = [
            *extra,
            (b"served-model-name", slot.entity.name.encode()),
            (OVERHEAD_HEADER, ms_since(ex.started)),
        ]
        served = Served(slot.entity.name)
        watch = StreamWatch(served, ex.started)
        try:
            opened = time.perf_counter()
            async with self.transport.stream(
                slot.replica.address,
                call.path,
                call.body,
                forwarded,
                self._timeout,
                method=call.method,
            ) as answer:
                stages.add("upstream", time.perf_counter() - opened)
                served.status = answer.status
                if answer.status != 200 or answer.content_type != "text/event-stream":
                    payload = await answer.read()
                    if call.verbatim:
                        content_type = answer.content_type.encode()
                        await send_body(ex.send, answer.status, payload, content_type, headers)
                        return served
                    payload = whole_answer(
                        served, slot.entity.protocol, call, answer.status, payload
                    )
                    if served.output_tokens:
                        served.ttft_ms = ex.elapsed_ms()  # every token came with the answer
                    await send_json(ex.send, answer.status, payload, headers)
                    return served
                start = {"type": "http.response.start", "status": 200}
                await ex.send({**start, "headers": [*headers, *SSE_HEADERS]})
                with stages.stage("streaming"):
                    async for chunk in answer.chunks():
                        watch.saw(chunk)
                        more = {"body": chunk, "more_body": True}
                        await ex.send({"type": "http.response.body", **more})
            await ex.send({"type": "http.response.body", "body": b""})
        except BerthError as exc:
            if served.status != 200:
                raise
            await end_stream_with_error(ex.send, exc)  # the status line is out
        finally:
            watch.finish()
        return served

    async def close(self) -> None:
        await self.transport.close()


class _Calls:
    """A request's body as each kind of replica takes it, each made the first time a replica
    of that kind is picked (an endpoint may split traffic between a model and an open LLM).

    Where a custom container may answer, every answer is read as a stream (aiohttp's client):
    its server may answer chunked or until it closes, which the whole-answer client (made for
    berth's own runtime) does not read. A container that declares an LLM task speaks
    ``OPENAI`` and takes the same bodies as an engine; any other ``invocations`` body goes to
    its predict route as for any container."""

    def __init__(self, ex: Exchange, route: EndpointRoute) -> None:
        self._ex = ex
        self._runtime: ReplicaCall | None = None
        self._engine: ReplicaCall | None = None
        if ex.invoke is not None or any(e.container is not None for e in route.entities):
            self.stream = True
        elif any(e.protocol is ReplicaProtocol.OPENAI for e in route.entities):
            request = ex.json_or_none()  # a body only a runtime model takes is no error yet
            self.stream = request is not None and request.get("stream") is True
        else:
            self.stream = self._runtime_call().stream

    def for_slot(self, slot: Slot) -> ReplicaCall:
        entity = slot.entity
        if self._ex.invoke is not None:
            return self._raw_call(entity)
        if entity.protocol is ReplicaProtocol.RUNTIME:
            return self._runtime_call()
        if entity.protocol is ReplicaProtocol.CONTAINER or (
            entity.container is not None and not self._llm_body()
        ):
            return self._container_call(entity)
        if self._engine is None:
            self._engine = engine_call(self._ex.json_object(), self._ex.operation)
        return self._engine

    def _llm_body(self) -> bool:
        """An OpenAI route's body, or one of the Databricks LLM bodies; an LLM container's
        server takes anything else (Vertex's ``instances``) on its predict route."""
        if self._ex.operation is not None:
            return True
        request = self._ex.json_or_none()
        return request is not None and any(key in request for _, key in _ENGINE_INPUTS)

    def _container_call(self, entity: EntityRoute) -> ReplicaCall:
        """The body as it came, on the server's predict route."""
        ex = self._ex
        if ex.operation is not None:
            raise InvalidParameter(
                f"Served entity '{entity.name}' is a custom container that declares no LLM "
                f"task, so it answers /serving-endpoints/{_endpoint(ex)}/invocations only; "
                "register its version with task llm/v1/chat, llm/v1/completions or "
                "llm/v1/embeddings to use the OpenAI routes."
            )
        assert entity.container is not None
        return ReplicaCall(ex.body, path=entity.container.predict_route, verbatim=True)

    def _raw_call(self, entity: EntityRoute) -> ReplicaCall:
        """The request as it came, on the path it named on the server."""
        ex = self._ex
        if entity.container is None or not entity.container.raw_invoke:
            raise no_raw_invoke(_endpoint(ex), entity.name)
        assert ex.invoke is not None
        method = str(ex.scope["method"])
        return ReplicaCall(ex.body, path=ex.invoke, verbatim=True, method=method)

    def _runtime_call(self) -> ReplicaCall:
        if self._runtime is None:
            ex = self._ex
            self._runtime = replica_call(ex.body, ex.parsed(), openai=ex.operation is not None)
        return self._runtime


def no_raw_invoke(endpoint: str, entity: str | None = None) -> NotFound:
    """Raw invoke asked of ``entity`` (or of an endpoint with no entity that takes it)."""
    subject = f"Served entity '{entity}' of '{endpoint}'" if entity else f"Endpoint '{endpoint}'"
    return NotFound(
        f"{subject} takes no raw invoke: only a custom container registered with "
        'container_spec.invoke_route_prefix "/*" answers '
        f"/serving-endpoints/{endpoint}/invoke/{{path}}; query "
        f"/serving-endpoints/{endpoint}/invocations instead."
    )


def _endpoint(ex: Exchange) -> str:
    return ex.route.name if ex.route is not None else "{name}"


def _replica_headers(ex: Exchange, route: EndpointRoute) -> dict[str, str]:
    headers = {
        "content-type": header(ex.scope, b"content-type") or "application/json",
        "x-request-id": ex.request_id,
    }
    if route.policy.predict_log:
        headers[PREDICT_LOG_HEADER] = "1"
    return headers
