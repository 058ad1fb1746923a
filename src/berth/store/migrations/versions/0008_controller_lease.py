"""controller lease: who runs the controller, with a fencing token; the data-plane snapshot
the leader publishes for every server's gateway; the demand other servers' gateways see

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 01:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    leases = op.create_table(
        "leases",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
    )
    # Seeded, so acquiring is always one conditional UPDATE, never an INSERT that races.
    op.bulk_insert(leases, [{"name": "controller", "holder": "", "token": 0, "expires_ms": 0}])
    snapshots = op.create_table(
        "data_plane_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
    )
    op.bulk_insert(snapshots, [{"id": 1, "version": -1, "body": None}])
    op.create_table(
        "gateway_loads",
        sa.Column("server", sa.String(255), primary_key=True),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("snapshot_version", sa.BigInteger(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gateway_loads")
    op.drop_table("data_plane_snapshots")
    op.drop_table("leases")
