"""A deployment's settings may name the records' field whose value routes a request that
brings no routing key (sticky A/B assignment per ``user_id``): the field's name, null for
none.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 01:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("deployment_settings") as batch:
        batch.add_column(sa.Column("routing_key_field", sa.String(250), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("deployment_settings") as batch:
        batch.drop_column("routing_key_field")
