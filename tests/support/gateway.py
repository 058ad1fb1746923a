"""A gateway in process for unit tests: real `Gateway`, real `ReplicaApp` replicas running a
small model, joined by `InProcessReplicas`; requests are ASGI calls, answers collected."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from starlette.types import Message

from berth.core.access_log import AccessLog
from berth.core.dataplane import (
    EndpointRoute,
    EntityRoute,
    ReplicaRoute,
    RoutePolicy,
    Snapshot,
    SnapshotBus,
)
from berth.core.ids import hash_token
from berth.core.principal import ADMINS_GROUP, Principal
from berth.gateway.app import Gateway
from berth.gateway.recording import Recorder
from berth.gateway.upstream import ReplicaTransport
from berth.inference import CaptureWriter
from berth.metrics import Metrics
from berth.runtime.app import Phase, ReplicaApp
from tests.support.inprocess import InProcessReplicas
from tests.support.net import wait_until

ADMIN, ALICE, BOB = "bth_admin", "bth_alice", "bth_bob"
PRINCIPALS = {
    ADMIN: Principal("admin", groups=frozenset({ADMINS_GROUP})),
    ALICE: Principal("alice"),
    BOB: Principal("bob"),
}


class Doubler:
    """A model: doubles ``inputs``; a chat body gets a one-word answer and its usage; a
    streamed chat, that word letter by letter with the usage last."""

    def predict(self, body: Any) -> Any:
        if isinstance(body, dict) and "messages" in body:
            return {
                "choices": [{"message": {"role": "assistant", "content": "hi"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            }
        return {"predictions": [2 * x for x in body["inputs"]]}

    def predict_stream(self, body: Any) -> Iterator[Any]:
        for letter in "hi":
            yield {"choices": [{"delta": {"content": letter}}]}
        yield {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}

    def batchable(self) -> None:
        return None


def replica() -> ReplicaApp:
    app = ReplicaApp(Doubler, max_concurrency=2)
    app.start_loading()
    wait_until(lambda: app.phase is not Phase.LOADING, timeout=10, what="the model to load")
    assert app.phase is Phase.READY, app.failure
    return app


def route(name: str = "ep", *addresses: str, **policy: Any) -> EndpointRoute:
    replicas = tuple(
        ReplicaRoute(f"{name}.one.{i}", address, 2) for i, address in enumerate(addresses or ("a",))
    )
    rules = RoutePolicy(queriers=frozenset({"u:alice"}), **policy)
    return EndpointRoute(name, f"{name}-id", 1, (EntityRoute("one", 100, replicas),), rules)


class Harness:
    def __init__(
        self,
        tmp_path: Path,
        *routes: EndpointRoute,
        apps: list[str],
        engine: ReplicaTransport | None = None,
        band_queue_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Replicas at ``apps`` run the runtime; with ``engine``, it reaches every replica;
        provisioned bands refill by ``clock``."""
        self.bus = SnapshotBus()
        tokens = {hash_token(token): who for token, who in PRINCIPALS.items()}
        self.bus.publish(Snapshot(1, {r.name: r for r in routes or (route(),)}, tokens))
        self.transport = InProcessReplicas({address: replica() for address in apps})
        self.metrics = Metrics()
        self.capture = CaptureWriter(tmp_path / "inference")
        self.access_log = AccessLog(tmp_path / "logs")
        recorder = Recorder(self.metrics, capture=self.capture, access_log=self.access_log)
        self.gateway = Gateway(
            self.bus,
            engine or self.transport,
            recorder=recorder,
            max_body_bytes=1024,
            band_queue_s=band_queue_s,
            clock=clock,
        )
        self.logs = tmp_path / "logs"

    async def call(
        self,
        path: str,
        body: Any = None,
        *,
        token: str | None = ALICE,
        method: str = "POST",
        query: bytes = b"",
    ) -> tuple[int, dict[str, str], bytes]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent: list[Message] = []
        parts = [raw[:5], raw[5:]]

        async def receive() -> dict[str, Any]:
            if parts:
                chunk = parts.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(parts)}
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        headers = [(b"content-type", b"application/json")]
        if token is not None:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": query,
            "headers": headers,
        }
        await self.gateway(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        answer_headers = {k.decode(): v.decode() for k, v in start["headers"]}
        payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], answer_headers, payload

    async def close(self) -> None:
        await self.gateway.close()

    def rendered(self) -> str:
        return self.metrics.render().decode()
