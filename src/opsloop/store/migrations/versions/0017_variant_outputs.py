"""A deployment's settings may restrict what each variant's answers say (rounded, top-k or
label-only probabilities): the restrictions as JSON, null for none.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 19:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("deployment_settings") as batch:
        batch.add_column(sa.Column("outputs_json", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("deployment_settings") as batch:
        batch.drop_column("outputs_json")
