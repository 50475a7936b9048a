"""Version references: the training data's profile, schema and sample kept with a model
version registered with its training data (``version_references``), which monitoring uses
for a deployment with no reference of its own.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 22:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "version_references",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("reference", sa.LargeBinary, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("sample_rows", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("version_references")
