"""The A/B report's per-arm sums as of a watermark (``ab_report_sums``).

The report (:func:`opsloop.serving.ab_report.ab_report`) read every feedback row and every
prediction event of the deployment. It now keeps, per deployment, what those rows come to
(per arm: the requests answered and, per outcome, the count, the exact sum and sum of
squares, the ones and the values that are not 0 or 1) as of the last feedback row and the
last event folded in, and folds in only the rows past them (:mod:`opsloop.serving.ab_arm_sums`).

The table starts empty: a deployment's first report fills its row, so this revision reads
none of the feedback.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "ab_report_sums",
        sa.Column("deployment", sa.String(250), primary_key=True),
        sa.Column("retires", sa.Integer, nullable=False),
        sa.Column("feedback_id", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("pending_json", sa.Text, nullable=True),
        sa.Column("sums_json", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("ab_report_sums")
