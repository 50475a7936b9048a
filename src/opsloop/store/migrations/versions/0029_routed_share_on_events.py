"""A prediction event keeps the candidate's share its request was routed at
(``routed_share``), as the serving runtime's routing decision had it: a canary's task-metric
gate reads a labelled request at that share, as its request counts read each request, rather
than at the share of the step decided when the request was answered. Events recorded before
this revision, and those logged without a ramping canary's routing, keep nulls: the gate
reads those at the share of the step when they were answered. ``routed`` says whether the
split routed the request (false for one that named its variant, and for a batch's row): the
gate reads no label of a request the split did not route, as it reads no such request; null
where it is unknown (events recorded before this revision, or logged from Python).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 17:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("prediction_events") as batch:
        batch.add_column(sa.Column("routed_share", sa.Float(precision=53), nullable=True))
        batch.add_column(sa.Column("routed", sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("prediction_events") as batch:
        batch.drop_column("routed")
        batch.drop_column("routed_share")
