"""Deployments: a named endpoint's variants (model versions or aliases), roles and weights,
and the protection of a deployment by approvals.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 10:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("automation", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=250), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint("name", name=op.f("uq_deployments_name")),
    )
    op.create_table(
        "deployment_variants",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("weight", sa.Float(precision=53), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("alias", sa.String(length=250), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_variants_deployment_id_deployments"),
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_deployment_variants_model_id_registered_models"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_deployment_variants_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("deployment_id", "name", name=op.f("pk_deployment_variants")),
    )
    op.create_index(
        op.f("ix_deployment_variants_model_id"), "deployment_variants", ["model_id"], unique=False
    )
    op.create_table(
        "protected_deployments",
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_protected_deployments")),
    )
    op.create_table(
        "deployment_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("approver", sa.String(length=250), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("consumed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_approvals")),
    )
    op.create_index(
        op.f("ix_deployment_approvals_deployment_digest"),
        "deployment_approvals",
        ["deployment", "digest"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(
        op.f("ix_deployment_approvals_deployment_digest"), table_name="deployment_approvals"
    )
    op.drop_table("deployment_approvals")
    op.drop_table("protected_deployments")
    op.drop_index(op.f("ix_deployment_variants_model_id"), table_name="deployment_variants")
    op.drop_table("deployment_variants")
    op.drop_table("deployments")
