"""What the data plane needs to serve, published by the controller as immutable snapshots.

A snapshot holds every endpoint's route table and the live token hashes, so a gateway answers
without reading the store. It is JSON-serialisable because gateways may run in other processes,
where they follow the controller by long-polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from berth.core.principal import Principal, PrincipalKind


class ReplicaProtocol(StrEnum):
    """What a served entity's replicas speak."""

    RUNTIME = "runtime"
    """berth's replica runtime: any body on ``/invocations``."""
    OPENAI = "openai"
    """An inference engine answering the OpenAI routes itself (``/v1/chat/completions``,
    ``/v1/completions``, ``/v1/embeddings``): an open LLM's replicas."""
    CONTAINER = "container"
    """A custom container's own server: the body as it came, on its predict route. A
    container version that declares an LLM task speaks ``OPENAI`` instead (its server answers
    the OpenAI routes itself); either way its route has a `ContainerRoute`."""


ENGINE_FORMATS = frozenset({"gguf", "huggingface"})
"""Model formats whose replicas run an inference engine speaking the OpenAI routes."""

CALIBRATED_FORMATS = frozenset({"gguf"})
"""Engine formats whose throughput chunk berth measures, so provisioned throughput sizes them:
the CPU engine's. A GPU engine's replicas are sized by concurrency until a calibration can
hold a GPU of its own."""


EMBEDDINGS_TASK = "llm/v1/embeddings"
CONTAINER_FORMAT = "container"
TASK_FORMATS = ENGINE_FORMATS | {CONTAINER_FORMAT}
"""Formats whose replicas know an LLM task: an engine's read from its weights, a custom
container's as registered (berth's ``task`` beside ``container_spec``)."""


def generates_tokens(model_format: str, details: Mapping[str, Any]) -> bool:
    """Whether a model version is an open LLM that generates: what a throughput chunk
    measures. An embedding model (its ``task`` read from its weights) is sized by
    concurrency."""
    return model_format in CALIBRATED_FORMATS and details.get("task") != EMBEDDINGS_TASK


def replica_protocol(model_format: str, task: str | None = None) -> ReplicaProtocol:
    """What a version's replicas speak; a container's server speaks the OpenAI routes when
    the version declares an LLM ``task`` (the only tasks a container may declare)."""
    if model_format == CONTAINER_FORMAT:
        return ReplicaProtocol.CONTAINER if task is None else ReplicaProtocol.OPENAI
    return ReplicaProtocol.OPENAI if model_format in ENGINE_FORMATS else ReplicaProtocol.RUNTIME


@dataclass(frozen=True, slots=True)
class ReplicaRoute:
    replica_id: str
    address: str
    max_concurrency: int


@dataclass(frozen=True, slots=True)
class ContainerRoute:
    """What the gateway needs of a custom container's server, besides its protocol."""

    predict_route: str
    """Where ``invocations`` bodies go when the server is not an LLM's."""
    raw_invoke: bool = False
    """``invoke_route_prefix: "/*"``: ``/serving-endpoints/{name}/invoke/{path}`` reaches
    ``/{path}`` on the server."""

    def to_json(self) -> list[Any]:
        return [self.predict_route, self.raw_invoke]


@dataclass(frozen=True, slots=True)
class ProvisionedBand:
    """An open LLM's provisioned throughput, in tokens per second: the gateway admits requests
    against it, the autoscaler moves it between the bounds a chunk (one replica) at a time."""

    chunk_tps: int
    """What one replica of the model version sustains here, as calibrated."""
    min_tps: int
    max_tps: int

    def current(self, replicas: int) -> int:
        """The band with ``replicas`` routed: never below the minimum, never above the maximum."""
        return min(max(replicas * self.chunk_tps, self.min_tps), self.max_tps)

    def to_json(self) -> list[int]:
        return [self.chunk_tps, self.min_tps, self.max_tps]


@dataclass(frozen=True, slots=True)
class EntityRoute:
    name: str
    traffic_percentage: int
    replicas: tuple[ReplicaRoute, ...]
    external: Mapping[str, Any] | None = None
    """An external model's block, credentials resolved: served by a provider, not replicas."""
    cold: bool = False
    """No replica routed but one is coming (scaled to zero, or its only replica is being
    replaced): a request waits while it starts."""
    protocol: ReplicaProtocol = ReplicaProtocol.RUNTIME
    provisioned: ProvisionedBand | None = None
    """Set for an open LLM served with provisioned throughput."""
    container: ContainerRoute | None = None
    """Set for a custom container's server, whose answers are read as streams (it may
    answer chunked or until it closes) and which raw invoke may reach."""

    @property
    def live(self) -> bool:
        return bool(self.replicas) or self.external is not None or self.cold


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """What an endpoint's settings ask of the gateway besides where requests go.

    Built once per pass by the controller (``controller/targets.route_policy``) from the
    endpoint's grants, AI gateway, rate limits and log settings; the gateway reads it.
    """

    fallback: bool = False
    """AI gateway ``fallback_config``: a failing external entity hands over to the next one."""
    queriers: frozenset[str] = frozenset()
    """Who holds CAN_QUERY: ``u:<principal>`` and ``g:<group>`` keys (admins always may)."""
    track_usage: bool = False
    """AI gateway ``usage_tracking_config``: each request's cost is summed for reports."""
    rate_limits: tuple[Mapping[str, Any], ...] = ()
    """Legacy and AI gateway rate limits: ``{"calls"?, "tokens"?, "key", "principal"?, ...}``."""
    capture: float = 0.0
    """Inference tables: the share of requests whose payloads are captured (0 = off)."""
    access_log: bool = False
    predict_log: bool = False
    guardrails: Mapping[str, Any] | None = None
    """AI gateway ``guardrails``: ``{"input": {...}, "output": {...}}``."""

    def to_json(self) -> dict[str, Any]:
        return {
            "fallback": self.fallback,
            "queriers": sorted(self.queriers),
            "track_usage": self.track_usage,
            "rate_limits": list(self.rate_limits),
            "capture": self.capture,
            "access_log": self.access_log,
            "predict_log": self.predict_log,
            "guardrails": self.guardrails,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RoutePolicy:
        return cls(
            fallback=data["fallback"],
            queriers=frozenset(data["queriers"]),
            track_usage=data["track_usage"],
            rate_limits=tuple(data["rate_limits"]),
            capture=data["capture"],
            access_log=data["access_log"],
            predict_log=data["predict_log"],
            guardrails=data.get("guardrails"),
        )


@dataclass(frozen=True, slots=True)
class EndpointRoute:
    name: str
    endpoint_id: str
    config_version: int
    entities: tuple[EntityRoute, ...]
    policy: RoutePolicy = RoutePolicy()

    @property
    def serving(self) -> bool:
        """At least one routed entity has a ready replica."""
        return any(e.live and e.traffic_percentage > 0 for e in self.entities)


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int = 0
    endpoints: Mapping[str, EndpointRoute] = field(default_factory=dict)
    tokens: Mapping[str, Principal] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "endpoints": [
                {
                    "name": ep.name,
                    "endpoint_id": ep.endpoint_id,
                    "config_version": ep.config_version,
                    **ep.policy.to_json(),
                    "entities": [
                        {
                            "name": en.name,
                            "traffic_percentage": en.traffic_percentage,
                            "replicas": [
                                [r.replica_id, r.address, r.max_concurrency] for r in en.replicas
                            ],
                            "external": en.external,
                            "cold": en.cold,
                            "protocol": en.protocol.value,
                            "provisioned": en.provisioned and en.provisioned.to_json(),
                            "container": en.container and en.container.to_json(),
                        }
                        for en in ep.entities
                    ],
                }
                for ep in self.endpoints.values()
            ],
            "tokens": {h: [p.name, p.kind.value, sorted(p.groups)] for h, p in self.tokens.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        endpoints = {
            ep["name"]: EndpointRoute(
                name=ep["name"],
                endpoint_id=ep["endpoint_id"],
                config_version=ep["config_version"],
                entities=tuple(
                    EntityRoute(
                        en["name"],
                        en["traffic_percentage"],
                        tuple(ReplicaRoute(r[0], r[1], r[2]) for r in en["replicas"]),
                        en.get("external"),
                        en.get("cold", False),
                        ReplicaProtocol(en.get("protocol", ReplicaProtocol.RUNTIME)),
                        ProvisionedBand(*en["provisioned"]) if en.get("provisioned") else None,
                        ContainerRoute(*en["container"]) if en.get("container") else None,
                    )
                    for en in ep["entities"]
                ),
                policy=RoutePolicy.from_json(ep),
            )
            for ep in data["endpoints"]
        }
        tokens = {
            h: Principal(name, PrincipalKind(kind), frozenset(groups))
            for h, (name, kind, groups) in data["tokens"].items()
        }
        return cls(version=data["version"], endpoints=endpoints, tokens=tokens)


class SnapshotBus:
    """Holds the newest snapshot; readers take it without locking, followers long-poll."""

    def __init__(self) -> None:
        self.current = Snapshot()
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[Snapshot], None]] = []

    def subscribe(self, listener: Callable[[Snapshot], None]) -> None:
        """Call ``listener`` with each new snapshot (e.g. to retry requests waiting for a
        replica that the new routes now have)."""
        self._listeners.append(listener)

    def publish(self, snapshot: Snapshot) -> None:
        self.current = snapshot
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in self._listeners:
            listener(snapshot)

    async def newer_than(self, version: int, timeout: float) -> Snapshot:
        """The newest snapshot once its version passes ``version``, or the current one."""
        if self.current.version > version:
            return self.current
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)
        return self.current
