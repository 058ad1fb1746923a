"""governance: principal activity, token makers, grants, usage sums, audit log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 22:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("principals") as batch:
        batch.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("created_by", sa.String(length=255), nullable=True))
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("principal_kind", sa.String(length=32), nullable=False),
        sa.Column("principal_name", sa.String(length=255), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("object_type", "object_id", "principal_kind", "principal_name"),
    )
    op.create_index("ix_grants_object_id", "grants", ["object_id"])
    # What existed before grants did: its creator manages it, as a creator now does.
    for table, key, object_type, level in (
        ("endpoints", "id", "serving-endpoint", "CAN_MANAGE"),
        ("models", "name", "registered-model", "CAN_MANAGE"),
        ("secret_scopes", "name", "secret-scope", "MANAGE"),
    ):
        op.execute(
            "INSERT INTO grants (object_type, object_id, principal_kind, principal_name, level) "
            f"SELECT '{object_type}', t.{key}, COALESCE(p.kind, 'user'), t.creator, '{level}' "
            f"FROM {table} t LEFT JOIN principals p ON p.name = t.creator"
        )
    op.execute(
        "INSERT INTO grants (object_type, object_id, principal_kind, principal_name, level) "
        "SELECT 'secret-scope', name, 'group', 'users', 'MANAGE' FROM secret_scopes "
        "WHERE initial_manage_principal = 'users'"
    )
    op.create_table(
        "usage",
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("endpoint", sa.String(length=63), nullable=False),
        sa.Column("served_entity", sa.String(length=255), nullable=False),
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "endpoint", "served_entity", "principal", "status"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_timestamp", "audit_log", ["timestamp"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_timestamp", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("usage")
    op.drop_index("ix_grants_object_id", table_name="grants")
    op.drop_table("grants")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("created_by")
    with op.batch_alter_table("principals") as batch:
        batch.drop_column("active")
