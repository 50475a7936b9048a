"""Monitoring policies: a deployment's stored rules (as JSON) and the detector its error
stream is read by, versioned (a revision per change) like its other settings.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "monitoring_policies",
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("rules_json", sa.Text(), nullable=False),
        sa.Column("error_detector", sa.String(length=32), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("deployment", name=op.f("pk_monitoring_policies")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("monitoring_policies")
