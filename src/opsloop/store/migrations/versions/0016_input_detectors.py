"""Input detectors: a deployment may carry an input anomaly detector (its numbers as JSON)
and the action its data plane takes on a flagged request.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 19:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "deployment_input_detectors",
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("detector_json", sa.Text(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("deployment", name=op.f("pk_deployment_input_detectors")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("deployment_input_detectors")
