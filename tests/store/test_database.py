"""Read transactions: every statement of one read sees the same data."""

from __future__ import annotations

import sqlalchemy as sa

from opsloop.store import tables
from opsloop.store.database import Database


def test_a_read_sees_one_snapshot_across_statements(store_uri):
    reader, writer = Database(store_uri), Database(store_uri)
    count = sa.select(sa.func.count()).select_from(tables.experiments)
    with reader.read() as connection:
        before = connection.execute(count).scalar_one()
        with writer.write() as other:
            other.execute(tables.experiments.insert().values(name="late", created_ms=1))
        # A write committed between two statements of one read stays unseen by the second.
        assert connection.execute(count).scalar_one() == before
    with reader.read() as connection:
        assert connection.execute(count).scalar_one() == before + 1
    reader.dispose()
    writer.dispose()
