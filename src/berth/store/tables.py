"""ORM rows. Only code inside ``berth.store`` sees these classes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Json = dict[str, Any]


class Base(DeclarativeBase):
    pass


class PrincipalRow(Base):
    """A user or a service principal; tokens and grants hang off it."""

    __tablename__ = "principals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    """SCIM's ``active``: an inactive principal's tokens are refused on both planes."""
    created_at: Mapped[int] = mapped_column(BigInteger)


class GroupRow(Base):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class GroupMemberRow(Base):
    __tablename__ = "group_members"
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    principal_id: Mapped[int] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True
    )


class EntitlementRow(Base):
    """What a user, service principal or group may do beyond its grants (SCIM
    ``entitlements``); exactly one of the two owners is set."""

    __tablename__ = "entitlements"
    __table_args__ = (UniqueConstraint("principal_id", "group_id", "value", name="uq_entitlement"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    principal_id: Mapped[int | None] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), nullable=True
    )
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), nullable=True
    )
    value: Mapped[str] = mapped_column(String(64))


class TokenRow(Base):
    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    """Who made the token: its owner, or an admin acting on the owner's behalf."""


class ModelRow(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[Json]] = mapped_column(JSON, default=list)
    creator: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    last_version: Mapped[int] = mapped_column(Integer, default=0)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    artifact_path: Mapped[str] = mapped_column(Text)
    details: Mapped[Json] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(Text, default="")
    creator: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)


class CalibrationRow(Base):
    """What one replica of an open LLM's version sustains on one kind of host: its throughput
    chunk, measured, with how and when. Deleting the version deletes its calibrations."""

    __tablename__ = "calibrations"
    __table_args__ = (UniqueConstraint("model_version_id", "fingerprint"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    fingerprint: Mapped[str] = mapped_column(String(255))
    """The host and engine: CPU model, logical CPUs, engine version."""
    chunk_tps: Mapped[int] = mapped_column(Integer)
    method: Mapped[Json] = mapped_column(JSON)
    calibrated_at: Mapped[int] = mapped_column(BigInteger)
    duration_s: Mapped[float] = mapped_column(Float)


class EndpointRow(Base):
    """A serving endpoint. Configs are stored as the normalised Databricks JSON documents."""

    __tablename__ = "endpoints"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    creator: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[Json | None] = mapped_column(JSON, nullable=True)
    config_version: Mapped[int] = mapped_column(Integer, default=0)
    pending_config: Mapped[Json | None] = mapped_column(JSON, nullable=True)
    ready: Mapped[str] = mapped_column(String(32))
    config_update: Mapped[str] = mapped_column(String(32))
    task: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tags: Mapped[list[Json]] = mapped_column(JSON, default=list)
    ai_gateway: Mapped[Json | None] = mapped_column(JSON, nullable=True)
    rate_limits: Mapped[list[Json] | None] = mapped_column(JSON, nullable=True)
    route_optimized: Mapped[bool] = mapped_column(Boolean, default=False)
    email_notifications: Mapped[Json | None] = mapped_column(JSON, nullable=True)
    budget_policy_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    telemetry_config: Mapped[Json | None] = mapped_column(JSON, nullable=True)
    log_config: Mapped[Json | None] = mapped_column(JSON, nullable=True)
    """berth's log switches: ``{"access_log": bool, "predict_log": bool}``."""


class EndpointEventRow(Base):
    """A readable record of one state change of an endpoint."""

    __tablename__ = "endpoint_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("endpoints.id", ondelete="CASCADE"), index=True
    )
    timestamp: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    config_version: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SecretScopeRow(Base):
    __tablename__ = "secret_scopes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    creator: Mapped[str] = mapped_column(String(255))
    # Kept for the per-scope ACLs: Databricks grants MANAGE to this principal at creation.
    initial_manage_principal: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class SecretRow(Base):
    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("scope_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope_id: Mapped[int] = mapped_column(ForeignKey("secret_scopes.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    creator: Mapped[str] = mapped_column(String(255))
    last_updated: Mapped[int] = mapped_column(BigInteger)


class GrantRow(Base):
    """One direct permission: a principal or group holds ``level`` on one object.

    ``object_type`` is ``serving-endpoint`` (id = the endpoint's id), ``secret-scope`` (id =
    the scope's name) or ``registered-model`` (id = the model's name).
    """

    __tablename__ = "grants"
    __table_args__ = (
        UniqueConstraint("object_type", "object_id", "principal_kind", "principal_name"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(255), index=True)
    principal_kind: Mapped[str] = mapped_column(String(32))
    """``user``, ``service_principal`` or ``group``."""
    principal_name: Mapped[str] = mapped_column(String(255))
    level: Mapped[str] = mapped_column(String(32))


class UsageRow(Base):
    """Requests of one minute, one endpoint, served entity, principal and status, summed.

    Per-minute sums rather than a row per request: a busy endpoint answers thousands of
    requests a second, and summaries by endpoint, user and day need no more.
    """

    __tablename__ = "usage"
    # The metrics history reads one endpoint's recent minutes.
    __table_args__ = (Index("ix_usage_endpoint_minute", "endpoint", "minute"),)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """Epoch milliseconds at the start of the minute (UTC)."""
    endpoint: Mapped[str] = mapped_column(String(63), primary_key=True)
    served_entity: Mapped[str] = mapped_column(String(255), primary_key=True)
    principal: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[int] = mapped_column(Integer, primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    """The sum of the requests' latencies; divide by ``requests`` for the mean."""
    latency_buckets: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    """Requests per bucket of ``berth.core.latency``; null in rows written before it was kept."""


class ReplicaHistoryRow(Base):
    """A served entity's replicas in one minute, as of the controller's last pass in it.

    Written on the first pass of each minute and when a count changes, not on every pass.
    """

    __tablename__ = "replica_history"
    # Keyed by minute first for dropping old samples, indexed by endpoint for reading them.
    __table_args__ = (Index("ix_replica_history_endpoint_minute", "endpoint", "minute"),)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """Epoch milliseconds at the start of the minute (UTC)."""
    endpoint: Mapped[str] = mapped_column(String(63), primary_key=True)
    """The endpoint's id."""
    served_entity: Mapped[str] = mapped_column(String(255), primary_key=True)
    ready: Mapped[int] = mapped_column(Integer)
    desired: Mapped[int] = mapped_column(Integer)


class AuditRow(Base):
    """One control-plane change: who did what to which object, and the object before/after."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    timestamp: Mapped[int] = mapped_column(BigInteger, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(255))
    before: Mapped[Json | None] = mapped_column(JSON, nullable=True)
    after: Mapped[Json | None] = mapped_column(JSON, nullable=True)


class LeaseRow(Base):
    """A lease one server holds at a time (``controller``: who runs the controller).

    ``token`` grows by one on each acquisition: the fencing token a holder's writes carry.
    """

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    """The holding server's id; empty before the first acquisition."""
    token: Mapped[int] = mapped_column(BigInteger)
    expires_ms: Mapped[int] = mapped_column(BigInteger)
    """Epoch milliseconds, by the holder's clock, after which another server may take it."""


class DataPlaneSnapshotRow(Base):
    """The leader's newest data-plane snapshot (one row), for the other servers' gateways."""

    __tablename__ = "data_plane_snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The snapshot's JSON, external models' credentials sealed; None before the first."""


class ReplicaScaleRow(Base):
    """The replica counts of the leader's last controller pass (one row, replaced when they
    change), which the servers that do not lead answer GET with."""

    __tablename__ = "replica_scales"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    """Raised at each write, so a follower reads the body only when it changed."""
    body: Mapped[str | None] = mapped_column(Text, nullable=True)


class GatewayLoadRow(Base):
    """The demand a server that does not lead sees on its gateways, for the leader's
    autoscaler: one row per server, replaced as it changes."""

    __tablename__ = "gateway_loads"
    server: Mapped[str] = mapped_column(String(255), primary_key=True)
    report: Mapped[str] = mapped_column(Text)
    """``core.load.report_to_json`` as JSON."""
    snapshot_version: Mapped[int] = mapped_column(BigInteger)
    """The version of the leader's stored snapshot that the server's gateways route by."""
    at_ms: Mapped[int] = mapped_column(BigInteger)
    """When it was written, by the writer's clock: an old row is a server gone."""
