"""Alembic environment: runs the migrations on the connection that :mod:`..migrate` hands in.

Alembic executes this file itself; it is never imported by opsloop. Imported anywhere else
(for example by a doctest collector) it does nothing, because the migration context only
exists while Alembic runs it.
"""

from __future__ import annotations

from alembic import context

from opsloop.store.tables import metadata


def run_migrations() -> None:
    """Apply the pending migrations on the connection passed in ``config.attributes``."""
    connection = context.config.attributes["connection"]
    # Batch mode lets later migrations alter SQLite tables (which have no ALTER COLUMN).
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):
    run_migrations()
