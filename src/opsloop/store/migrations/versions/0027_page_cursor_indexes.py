"""Indexes for the pages of a monitor's windows and alerts, read newest first from a cursor.

``monitoring_evaluations``: a page of every variant's windows of one length is
``deployment = ? AND window_ms = ? AND (start_ms, variant) < (?, ?) ORDER BY start_ms DESC,
variant DESC LIMIT n``; the unique key leads with the variant, so without this index the
store read every window of the deployment and sorted them. One variant's page is served by
the unique key (``deployment, variant, window_ms, start_ms``).

``monitoring_alerts``: a page is ``deployment = ? [AND variant = ?] AND id < ? ORDER BY id
DESC LIMIT n``; the index on ``(deployment, at_ms)`` does not give the order of ids.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 11:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index(
        op.f("ix_monitoring_evaluations_by_start"),
        "monitoring_evaluations",
        ["deployment", "window_ms", "start_ms", "variant"],
    )
    op.create_index(
        op.f("ix_monitoring_alerts_deployment_id"), "monitoring_alerts", ["deployment", "id"]
    )
    op.create_index(
        op.f("ix_monitoring_alerts_deployment_variant_id"),
        "monitoring_alerts",
        ["deployment", "variant", "id"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_monitoring_alerts_deployment_variant_id"), "monitoring_alerts")
    op.drop_index(op.f("ix_monitoring_alerts_deployment_id"), "monitoring_alerts")
    op.drop_index(
        op.f("ix_monitoring_evaluations_by_start"),
        "monitoring_evaluations",
    )
