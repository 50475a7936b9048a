"""Process samples: a serving worker's resident memory and CPU time while it answers.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 12:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "process_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("worker", sa.String(length=250), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("rss_bytes", sa.BigInteger(), nullable=False),
        sa.Column("cpu_seconds", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_samples")),
    )
    op.create_index(
        op.f("ix_process_samples_deployment_at_ms"), "process_samples", ["deployment", "at_ms"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_process_samples_deployment_at_ms"), table_name="process_samples")
    op.drop_table("process_samples")
