"""ORM rows. Only code inside ``berth.store`` sees these classes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
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


class TokenRow(Base):
    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


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
