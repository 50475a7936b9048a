"""Prediction events (every answered request and shadow answer) and the feedback joined to
them by request id.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "prediction_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("variant", sa.String(length=250), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("routing_key", sa.Text(), nullable=True),
        sa.Column("inputs_json", sa.Text(), nullable=False),
        sa.Column("output_json", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(precision=53), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_events")),
    )
    op.create_index(
        op.f("ix_prediction_events_deployment_at_ms"),
        "prediction_events",
        ["deployment", "at_ms"],
    )
    op.create_index(op.f("ix_prediction_events_request_id"), "prediction_events", ["request_id"])
    op.create_table(
        "prediction_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("label_json", sa.Text(), nullable=True),
        sa.Column("reward", sa.Float(precision=53), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_feedback")),
    )
    op.create_index(
        op.f("ix_prediction_feedback_request_id"), "prediction_feedback", ["request_id"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("prediction_feedback")
    op.drop_table("prediction_events")
