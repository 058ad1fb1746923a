"""The ``Backend`` protocol and the values that cross it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Protocol


class ReplicaState(StrEnum):
    STARTING = "STARTING"
    READY = "READY"
    FAILED = "FAILED"
    STOPPING = "STOPPING"


_DERIVED = frozenset({"environment", "memory_mb"})
"""`ReplicaSpec` fields that follow from others (the environment, the artifact)."""


@dataclass(frozen=True, slots=True)
class ReplicaSpec:
    """Everything needed to run one replica; equal specs make interchangeable replicas."""

    endpoint: str
    served_entity: str
    artifact: str
    model_format: str
    python: str
    """The interpreter, a path on the server's machine; where replicas run on machines that
    build their environment themselves (the ray backend), the environment's name instead
    (``node:<hash>``, ``node:berth`` for berth's own), which every server gives alike."""
    max_concurrency: int
    pythonpath: str | None = None
    """Where the runtime is importable from inside a model's own environment (None on the
    ray backend, whose nodes make their own copy)."""
    env: tuple[tuple[str, str], ...] = ()
    warmup_json: str | None = None
    max_batch_size: int = 1
    """Above 1, the runtime merges concurrent requests into one ``predict`` call."""
    max_batch_wait_ms: float = 0.0
    gpus: int = 0
    """Whole GPUs each replica holds (its workload type's)."""
    task: str | None = None
    """An LLM's task (``llm/v1/chat``, ``completions``, ``embeddings``): an open LLM's from its
    weights' header (an embedding model's engine starts in embedding mode), a custom
    container's as registered (its server then answers the OpenAI routes)."""
    container: str | None = None
    """A custom container's spec and deployment (`core.container_contract.replica_json`): the
    replica runs that server, probes it and relays to it, and is never forked from a zygote."""
    environment: str | None = None
    """The model's environment spec as JSON (``EnvSpec.to_json``), None for berth's own. The
    local backend runs ``python``, which the server built from it; the ray backend's nodes,
    which do not see the server's paths, build it themselves."""
    memory_mb: int = 0
    """The model's weights in MiB (an open LLM's, read at registration; 0 when unknown): where
    replicas are placed by memory (the ray backend), a replica reserves this and a base."""

    def fingerprint(self) -> str:
        """A short content hash: replicas of an unchanged entity survive config updates.

        The fields as they are, not ``asdict``'s deep copy: each is a string, a number or a
        tuple of string pairs, which JSON writes the same either way (and the copy was most
        of a controller pass at 10,000 replicas). ``environment`` and ``memory_mb`` are left
        out: ``python`` names the environment already (its folder is the spec's hash, or on
        the ray backend the hash itself), and the artifact the weights; without them the ids
        stay those that berth gave before the fields existed."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _DERIVED}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]

    def replica_id(self, index: int) -> str:
        """Deterministic, so a restarted server finds what it started before."""
        return f"{self.endpoint}.{self.served_entity}.{self.fingerprint()}.{index}"

    def replica_ids(self, count: int) -> tuple[str, ...]:
        """``replica_id(i)`` for each ``i < count``, hashing the spec once."""
        prefix = f"{self.endpoint}.{self.served_entity}.{self.fingerprint()}."
        return tuple(f"{prefix}{i}" for i in range(count))


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    replica_id: str
    spec: ReplicaSpec
    state: ReplicaState
    address: str | None = None
    pid: int | None = None
    restarts: int = 0
    message: str = ""


class Backend(Protocol):
    """Runs replicas. Calls are idempotent: starting a known id or stopping an unknown one is
    a no-op, so the controller can apply a plan twice."""

    async def adopt(self) -> None:
        """Take over the replicas still running that an earlier holder of this backend
        started (this server before a restart, or the server that led before)."""

    async def start(self, replica_id: str, spec: ReplicaSpec) -> None: ...

    async def stop(self, replica_id: str) -> None: ...

    def replicas(self) -> list[ReplicaStatus]: ...

    async def keep_warm(self, spec: ReplicaSpec) -> None:
        """Make the next start of ``spec`` fast (it runs no replica now: scaled to zero)."""

    def logs(self, replica_id: str, max_bytes: int) -> str: ...

    async def close(self) -> None:
        """Server shutdown, or this server no longer leads: stop every replica that is the
        server's own (the local backend's); replicas that outlive servers (the ray backend's
        actors) are left running, for the next leader to adopt. ``adopt`` and ``start`` may
        follow (it leads again)."""
