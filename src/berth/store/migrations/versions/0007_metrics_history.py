"""metrics history: latency buckets on usage rows, replica counts per minute, both indexed by
endpoint and minute

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 00:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage") as batch:
        batch.add_column(sa.Column("latency_buckets", sa.JSON(), nullable=True))
    op.create_index("ix_usage_endpoint_minute", "usage", ["endpoint", "minute"])
    op.create_table(
        "replica_history",
        sa.Column("minute", sa.BigInteger(), primary_key=True),
        sa.Column("endpoint", sa.String(63), primary_key=True),
        sa.Column("served_entity", sa.String(255), primary_key=True),
        sa.Column("ready", sa.Integer(), nullable=False),
        sa.Column("desired", sa.Integer(), nullable=False),
    )
    op.create_index("ix_replica_history_endpoint_minute", "replica_history", ["endpoint", "minute"])


def downgrade() -> None:
    op.drop_table("replica_history")
    op.drop_index("ix_usage_endpoint_minute", "usage")
    with op.batch_alter_table("usage") as batch:
        batch.drop_column("latency_buckets")
