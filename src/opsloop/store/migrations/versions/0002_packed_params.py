"""A packed copy of each run's params on the run row, for fast search over many runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 08:10:00.000000

Existing runs get their copy from the params table, so a store made by an older version
searches the same after the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen here as in the revision: the constant in tables.py may not be changed under it.
_SEPARATOR = "\x1f"
_BATCH = 5_000


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("params_packed", sa.Text(), nullable=True))
        batch.add_column(sa.Column("param_count", sa.Integer(), server_default="0", nullable=False))
    connection = op.get_bind()
    params = sa.table("params", sa.column("run_id"), sa.column("key"), sa.column("value"))
    runs = sa.table("runs", sa.column("id"), sa.column("params_packed"), sa.column("param_count"))
    rows = connection.execute(
        sa.select(params.c.run_id, params.c.key, params.c.value).order_by(params.c.run_id)
    )
    packed: dict[int, list[str]] = {}
    for run_id, key, value in rows:
        packed.setdefault(run_id, []).extend((key, value))
    update = (
        runs.update()
        .where(runs.c.id == sa.bindparam("pk"))
        .values(params_packed=sa.bindparam("packed"), param_count=sa.bindparam("count"))
    )
    items = [
        {"pk": pk, "packed": _SEPARATOR.join(tokens), "count": len(tokens) // 2}
        for pk, tokens in packed.items()
    ]
    for start in range(0, len(items), _BATCH):
        connection.execute(update, items[start : start + _BATCH])


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("param_count")
        batch.drop_column("params_packed")
