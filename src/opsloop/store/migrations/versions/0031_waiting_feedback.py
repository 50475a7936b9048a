"""Feedback that waits for its answer's event (``waiting_feedback``).

A serving worker writes its prediction events in batches, so feedback sent right after an
answer may reach the store before the answer does; it was refused as an unknown id. It is
kept in this table until the answer's event is written, which joins it, or until its wait
ends (:mod:`opsloop.store.waiting_feedback`). At most one row per answer of a deployment;
the rows past their wait are found by ``(deployment, expires_ms)``.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 21:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "waiting_feedback",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("deployment", sa.String(250), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("label_json", sa.Text, nullable=True),
        sa.Column("reward", sa.Float(precision=53), nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(250), nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waiting_feedback")),
    )
    op.create_index(
        op.f("ix_waiting_feedback_deployment_request_id"),
        "waiting_feedback",
        ["deployment", "request_id"],
        unique=True,
    )
    op.create_index(
        op.f("ix_waiting_feedback_deployment_expires_ms"),
        "waiting_feedback",
        ["deployment", "expires_ms"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_waiting_feedback_deployment_expires_ms"), "waiting_feedback")
    op.drop_index(op.f("ix_waiting_feedback_deployment_request_id"), "waiting_feedback")
    op.drop_table("waiting_feedback")
