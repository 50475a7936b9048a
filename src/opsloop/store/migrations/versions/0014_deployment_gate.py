"""A protected deployment may require a passed release gate: the gate it requires, as JSON
(``true`` for any gate, or the gate's name or file sha256), null for none.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 13:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("protected_deployments") as batch:
        batch.add_column(sa.Column("required_gate_json", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("protected_deployments") as batch:
        batch.drop_column("required_gate_json")
