"""Token management (a token's expiry and last use, disabled users) and the keyed audit log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 04:40:00.000000

Existing tokens keep working: they never expire and have no recorded use yet. Existing audit
entries are marked unkeyed (plain sha256 links); entries from now on are keyed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("last_used_ms", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("disabled_ms", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(
            sa.Column("keyed", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("keyed")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled_ms")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_ms")
        batch.drop_column("expires_ms")
