"""Idempotent metric batches (the batches each run has applied, by their writer's key) and
run heartbeats (when a run's writer last showed it was alive).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 05:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "run_batches",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_batches_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "batch_id", name=op.f("pk_run_batches")),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("heartbeat_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_ms")
    op.drop_table("run_batches")
