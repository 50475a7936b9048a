"""A deployment's reference records which model version made the predictions it keeps
(``predicted_model``, ``predicted_version``), so that a window a later version answered is
judged against that version's errors on the reference rather than the earlier one's.
References set before this revision keep nulls: which version predicted them is unknown.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 07:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("monitoring_references") as batch:
        batch.add_column(sa.Column("predicted_model", sa.String(250), nullable=True))
        batch.add_column(sa.Column("predicted_version", sa.Integer, nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("monitoring_references") as batch:
        batch.drop_column("predicted_version")
        batch.drop_column("predicted_model")
