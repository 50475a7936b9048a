"""Audit entities up to 600 characters: an alias entity of a 250-character model name and a
250-character alias is 513 characters, more than the 500 the column held.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 05:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column(
            "entity", existing_type=sa.String(length=500), type_=sa.String(length=600)
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column(
            "entity", existing_type=sa.String(length=600), type_=sa.String(length=500)
        )
