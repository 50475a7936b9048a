"""An audit entry made by a rollout's controller carries its decision (``decision``): the
action, the candidate's share after it and the evidence behind it (each gate's statistic,
threshold and samples), as JSON. Only the controller's path writes it, so a reason typed by
a person is never taken for a decision. Entries without one hash as they always did.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 07:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("decision", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("decision")
