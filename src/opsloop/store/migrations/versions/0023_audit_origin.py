"""An audit entry records where its change came from (``origin``): over HTTP (the token's
id and the client's address) or from a Python process (its program and host), as short
JSON. Entries written before this revision keep a null origin, which their hashes never
covered.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 05:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("origin", sa.String(300), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("origin")
