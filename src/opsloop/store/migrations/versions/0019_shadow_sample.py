"""Shadow sampling: a shadow variant may answer a share of the request copies
(``deployment_variants.shadow_sample``; NULL, as for the variants stored before, is 1).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 18:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("deployment_variants") as batch:
        batch.add_column(sa.Column("shadow_sample", sa.Float(precision=53), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("deployment_variants") as batch:
        batch.drop_column("shadow_sample")
