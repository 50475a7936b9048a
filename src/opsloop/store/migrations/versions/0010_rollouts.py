"""Rollouts: a deployment's ramp or bandit policy and its shared state.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "rollouts",
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("policy_json", sa.Text(), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(length=250), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("deployment", name=op.f("pk_rollouts")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("rollouts")
