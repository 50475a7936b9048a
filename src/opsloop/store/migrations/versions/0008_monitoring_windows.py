"""Monitoring: window parts per worker, references, monitor state, evaluations and alerts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 07:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "monitoring_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("variant", sa.String(length=250), nullable=False),
        sa.Column("window_ms", sa.BigInteger(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("worker", sa.String(length=250), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("sample", sa.LargeBinary(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_windows")),
        sa.UniqueConstraint(
            "deployment",
            "variant",
            "window_ms",
            "start_ms",
            "worker",
            name=op.f("uq_monitoring_windows_deployment_variant_window_ms_start_ms_worker"),
        ),
    )
    op.create_table(
        "monitoring_references",
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("reference", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("deployment", name=op.f("pk_monitoring_references")),
    )
    op.create_table(
        "monitoring_state",
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("deployment", "name", name=op.f("pk_monitoring_state")),
    )
    op.create_table(
        "monitoring_evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("variant", sa.String(length=250), nullable=False),
        sa.Column("window_ms", sa.BigInteger(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("metrics_json", sa.Text(), nullable=False),
        sa.Column("evaluated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_evaluations")),
        sa.UniqueConstraint(
            "deployment",
            "variant",
            "window_ms",
            "start_ms",
            name=op.f("uq_monitoring_evaluations_deployment_variant_window_ms_start_ms"),
        ),
    )
    op.create_table(
        "monitoring_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("variant", sa.String(length=250), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("evidence_json", sa.Text(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_alerts")),
    )
    op.create_index(
        op.f("ix_monitoring_alerts_deployment_at_ms"), "monitoring_alerts", ["deployment", "at_ms"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("monitoring_alerts")
    op.drop_table("monitoring_evaluations")
    op.drop_table("monitoring_state")
    op.drop_table("monitoring_references")
    op.drop_table("monitoring_windows")
