"""An index of waiting feedback by user (``waiting_feedback(created_by, expires_ms)``).

The bound on one user's waiting feedback across all deployments
(:data:`opsloop.store.waiting_feedback.MAX_WAITING_PER_USER_ALL`) counts that user's rows
whose wait has not ended with each feedback that waits: with this index the count reads
the user's live rows only, never the whole table.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-08 01:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        op.f("ix_waiting_feedback_created_by_expires_ms"),
        "waiting_feedback",
        ["created_by", "expires_ms"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_waiting_feedback_created_by_expires_ms"), "waiting_feedback")
