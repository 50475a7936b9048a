"""Micro-batching: a deployment's settings may group concurrent requests per variant.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("deployment_settings") as batch:
        batch.add_column(sa.Column("batching_json", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("deployment_settings") as batch:
        batch.drop_column("batching_json")
