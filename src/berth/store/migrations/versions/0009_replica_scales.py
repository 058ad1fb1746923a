"""replica scales: the replica counts (ready, wanted) of the leader's last controller pass, for
the servers that do not lead to answer GET with

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 03:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    scales = op.create_table(
        "replica_scales",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
    )
    op.bulk_insert(scales, [{"id": 1, "version": 0, "body": None}])


def downgrade() -> None:
    op.drop_table("replica_scales")
