"""An index for the A/B report's newest feedback per request.

The report (:func:`opsloop.serving.ab_report.ab_report`) keeps, per request of a
deployment, its newest feedback: ``WHERE deployment = ? GROUP BY request_id`` with
``max(id)``, joined with the request's primary answer. With only the index on
``request_id``, SQLite drove the query from the deployment's answers, looked each one's
feedback up and sorted the groups in a temporary B-tree; PostgreSQL read the deployment's
feedback and sorted or hashed it. On ``(deployment, request_id, id)`` the deployment's
feedback is read from the index alone, already in the order of its groups.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 14:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        op.f("ix_prediction_feedback_deployment_request_id_id"),
        "prediction_feedback",
        ["deployment", "request_id", "id"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_prediction_feedback_deployment_request_id_id"), "prediction_feedback")
