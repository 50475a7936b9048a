"""The review queue, deployment settings (confidence threshold, model assertions), and what
each prediction event's client got with the assertions that fired.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("prediction_events") as batch:
        batch.add_column(sa.Column("disposition", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("assertions_json", sa.Text(), nullable=True))
    op.create_table(
        "deployment_settings",
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("confidence_threshold", sa.Float(precision=53), nullable=True),
        sa.Column("assertions_json", sa.Text(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("deployment", name=op.f("pk_deployment_settings")),
    )
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("records_json", sa.Text(), nullable=False),
        sa.Column("suggestion_json", sa.Text(), nullable=True),
        sa.Column("rules_json", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("claimed_by", sa.String(length=250), nullable=True),
        sa.Column("claimed_ms", sa.BigInteger(), nullable=True),
        sa.Column("label_json", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.String(length=250), nullable=True),
        sa.Column("answered_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_items")),
    )
    op.create_index(
        op.f("ix_review_items_deployment_state_id"),
        "review_items",
        ["deployment", "state", "id"],
    )
    op.create_index(op.f("ix_review_items_request_id"), "review_items", ["request_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("review_items")
    op.drop_table("deployment_settings")
    with op.batch_alter_table("prediction_events") as batch:
        batch.drop_column("assertions_json")
        batch.drop_column("disposition")
