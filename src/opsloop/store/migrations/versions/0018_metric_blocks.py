"""Metric blocks: per-block summaries of each metric series (count, first and last step,
minimum and maximum with their step and logging order) at four block sizes, so a chart of
a long series reads summaries instead of every point. The summaries of the points already
stored are computed here, in the database, from ``metrics``.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 19:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# Block ``step >> shift`` at level i; frozen here as they were when this revision was made.
_LEVEL_SHIFTS = (4, 8, 12, 16)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "metric_blocks",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("block", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("step_first", sa.BigInteger(), nullable=False),
        sa.Column("step_last", sa.BigInteger(), nullable=False),
        sa.Column("min_value", sa.Float(precision=53), nullable=False),
        sa.Column("min_step", sa.BigInteger(), nullable=False),
        sa.Column("min_seq", sa.BigInteger(), nullable=False),
        sa.Column("max_value", sa.Float(precision=53), nullable=False),
        sa.Column("max_step", sa.BigInteger(), nullable=False),
        sa.Column("max_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["metric_keys.id"], name=op.f("fk_metric_blocks_key_id_metric_keys")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_metric_blocks_run_id_runs")),
        sa.PrimaryKeyConstraint(
            "run_id", "key_id", "level", "block", name=op.f("pk_metric_blocks")
        ),
        sqlite_with_rowid=False,
    )
    for level, shift in enumerate(_LEVEL_SHIFTS):
        # The minimum is the first point by (value, step, seq) of its block, the maximum the
        # last: the same choice the write path makes.
        op.execute(
            "INSERT INTO metric_blocks (run_id, key_id, level, block, points, step_first, "
            "step_last, min_value, min_step, min_seq, max_value, max_step, max_seq) "
            f"SELECT run_id, key_id, {level}, block, COUNT(*), MIN(step), MAX(step), "
            "MIN(value), MAX(CASE WHEN low_rank = 1 THEN step END), "
            "MAX(CASE WHEN low_rank = 1 THEN seq END), "
            "MAX(value), MAX(CASE WHEN high_rank = 1 THEN step END), "
            "MAX(CASE WHEN high_rank = 1 THEN seq END) "
            f"FROM (SELECT run_id, key_id, step, seq, value, step >> {shift} AS block, "
            "ROW_NUMBER() OVER (PARTITION BY run_id, key_id, step >> "
            f"{shift} ORDER BY value, step, seq) AS low_rank, "
            "ROW_NUMBER() OVER (PARTITION BY run_id, key_id, step >> "
            f"{shift} ORDER BY value DESC, step DESC, seq DESC) AS high_rank "
            "FROM metrics) AS ranked GROUP BY run_id, key_id, block"
        )


def downgrade() -> None:
    """Revert this revision: the summaries go; the points they summarised stay."""
    op.drop_table("metric_blocks")
