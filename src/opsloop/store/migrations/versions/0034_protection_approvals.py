"""Approvals of lowering or removing a protection (``protection_approvals``).

Lowering or removing the protection of an alias or a deployment is itself a protected
change: it needs approvals of exactly the protection asked for, by people other than the
admin who applies it (:mod:`opsloop.registry.protection_approvals`). An alias move's
approvals name a version and a deployment's a definition's digest, so neither table can
hold an approval of a protection; this one keys them by the audit log's entity
(``model:NAME/alias:ALIAS`` or ``deployment:NAME``) and the digest of the protection
approved.

The table starts empty: no approval of a protection was recorded before.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-08 00:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "protection_approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("entity", sa.String(600), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("approver", sa.String(250), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("consumed", sa.Boolean, nullable=False),
    )
    op.create_index(
        op.f("ix_protection_approvals_entity_digest"),
        "protection_approvals",
        ["entity", "digest"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_protection_approvals_entity_digest"), table_name="protection_approvals")
    op.drop_table("protection_approvals")
