"""A reference's classes kept beside its bytes (``scored_classes``, on
``monitoring_references`` and ``version_references``): the classes of the probabilities it
keeps, as JSON (``null`` when it keeps none).

``log_predictions`` with probabilities and no ``classes=`` names their columns by the
deployment's reference's classes in every call; it read the whole reference (its sample's
bytes) for them. The column is read instead. References stored before this revision are
filled here, one row at a time, from their bytes (zlib-compressed JSON whose ``scores``
hold the ``classes``); a row whose bytes cannot be read so keeps a null, and its classes are
read from the reference as before.

Revision ID: 0030
Revises: 0028
Create Date: 2026-12-07 18:00:00.000000
"""

from __future__ import annotations

import json
import zlib

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

#: Each table with a reference, by the column that keys its rows.
_TABLES = (("monitoring_references", "deployment"), ("version_references", "version_id"))


def _classes(data: bytes) -> str | None:
    """The JSON of the classes a stored reference's scores keep (``"null"``: none), or
    ``None`` when its bytes are not the form this revision knows."""
    try:
        state = json.loads(zlib.decompress(data))
        scores = state.get("scores")
        classes = None if scores is None else list(scores["classes"])
    except (zlib.error, ValueError, KeyError, TypeError, AttributeError):
        return None
    return json.dumps(classes, separators=(",", ":"), default=str)


def upgrade() -> None:
    """Apply this revision."""
    for name, _ in _TABLES:
        with op.batch_alter_table(name) as batch:
            batch.add_column(sa.Column("scored_classes", sa.Text, nullable=True))
    connection = op.get_bind()
    for name, key in _TABLES:
        table = sa.table(name, sa.column(key), sa.column("reference"), sa.column("scored_classes"))
        keys = connection.execute(sa.select(table.c[key])).scalars().all()
        # One reference's bytes in memory at a time: a reference holds a sample of rows.
        for value in keys:
            data = connection.execute(
                sa.select(table.c.reference).where(table.c[key] == value)
            ).scalar_one()
            classes = _classes(bytes(data))
            if classes is not None:
                connection.execute(
                    table.update().where(table.c[key] == value).values(scored_classes=classes)
                )


def downgrade() -> None:
    """Revert this revision."""
    for name, _ in reversed(_TABLES):
        with op.batch_alter_table(name) as batch:
            batch.drop_column("scored_classes")
