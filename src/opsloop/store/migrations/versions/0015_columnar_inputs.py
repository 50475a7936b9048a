"""Columnar inputs: the events logged together keep their inputs once, column by column, in
``prediction_input_batches``; such an event points at its row there instead of holding a
JSON text of its own (``inputs_json`` may be null).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "prediction_input_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=250), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("inputs_arrow", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_input_batches")),
    )
    with op.batch_alter_table("prediction_events") as batch:
        batch.alter_column("inputs_json", existing_type=sa.Text(), nullable=True)
        batch.add_column(sa.Column("input_batch_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("input_row", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_prediction_events_input_batch_id_prediction_input_batches"),
            "prediction_input_batches",
            ["input_batch_id"],
            ["id"],
        )


def downgrade() -> None:
    """Revert this revision: the events of a batch get their inputs back as JSON text
    (a list of their one record), then the batches are dropped."""
    connection = op.get_bind()
    events = sa.table(
        "prediction_events",
        sa.column("id", sa.Integer()),
        sa.column("inputs_json", sa.Text()),
        sa.column("input_batch_id", sa.Integer()),
        sa.column("input_row", sa.Integer()),
    )
    batches = sa.table(
        "prediction_input_batches",
        sa.column("id", sa.Integer()),
        sa.column("inputs_arrow", sa.LargeBinary()),
    )
    _restore_texts(connection, events, batches)
    with op.batch_alter_table("prediction_events") as batch:
        batch.drop_constraint(
            op.f("fk_prediction_events_input_batch_id_prediction_input_batches"),
            type_="foreignkey",
        )
        batch.drop_column("input_row")
        batch.drop_column("input_batch_id")
        batch.alter_column("inputs_json", existing_type=sa.Text(), nullable=False)
    op.drop_table("prediction_input_batches")


def _restore_texts(connection, events, batches) -> None:
    import json

    import pyarrow as pa

    for batch_id, blob in connection.execute(sa.select(batches.c.id, batches.c.inputs_arrow)).all():
        records = pa.ipc.open_stream(blob).read_all().to_pylist()
        rows = connection.execute(
            sa.select(events.c.id, events.c.input_row).where(events.c.input_batch_id == batch_id)
        ).all()
        if rows:
            connection.execute(
                events.update()
                .where(events.c.id == sa.bindparam("event_id"))
                .values(inputs_json=sa.bindparam("text")),
                [
                    {"event_id": event_id, "text": json.dumps([records[row]])}
                    for event_id, row in rows
                ],
            )
