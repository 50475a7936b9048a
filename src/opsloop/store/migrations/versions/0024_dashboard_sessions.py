"""Dashboard sessions: the browser's cookie holds a random session id, the store only its
sha256, with the sha256 of the token it was started from, the user and role it was started
as, and when it ends (idle and absolute), so every server worker shares it.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 07:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "dashboard_sessions",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(250), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("idle_until_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_dashboard_sessions")),
    )
    op.create_index(
        op.f("ix_dashboard_sessions_token_sha256"), "dashboard_sessions", ["token_sha256"]
    )
    op.create_index(
        op.f("ix_dashboard_sessions_idle_until_ms"), "dashboard_sessions", ["idle_until_ms"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_dashboard_sessions_idle_until_ms"), "dashboard_sessions")
    op.drop_index(op.f("ix_dashboard_sessions_token_sha256"), "dashboard_sessions")
    op.drop_table("dashboard_sessions")
