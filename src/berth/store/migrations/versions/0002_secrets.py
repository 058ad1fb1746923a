"""secret scopes and secrets (values stored as AES-GCM ciphertext)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secret_scopes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("creator", sa.String(length=255), nullable=False),
        sa.Column("initial_manage_principal", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("creator", sa.String(length=255), nullable=False),
        sa.Column("last_updated", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["scope_id"], ["secret_scopes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("secrets")
    op.drop_table("secret_scopes")
