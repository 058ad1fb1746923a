"""entitlements of principals and groups (who may run model code)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 12:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entitlements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "principal_id",
            sa.Integer(),
            sa.ForeignKey("principals.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "group_id", sa.Integer(), sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column("value", sa.String(64), nullable=False),
        sa.UniqueConstraint("principal_id", "group_id", "value", name="uq_entitlement"),
    )


def downgrade() -> None:
    op.drop_table("entitlements")
