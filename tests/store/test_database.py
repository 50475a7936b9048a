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


def test_a_sqlite_uri_filename_opens_the_file_read_only(tmp_path, monkeypatch):
    """``sqlite:///file:PATH?mode=ro&uri=true`` reads the store at PATH, cannot write it, and
    makes no file of its own (the URI filename is not a path)."""
    path = tmp_path / "store.db"
    db = Database(f"sqlite:///{path}")
    db.read_value("SELECT 1")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for uri in (
        f"sqlite:///file:{path}?mode=ro&uri=true",
        f"sqlite:///file://{path}?mode=ro&uri=true",
    ):
        reader = Database(uri, migrate=False)
        with reader.read() as connection:
            assert (
                connection.execute(sa.select(sa.func.count()).select_from(tables.runs)).scalar()
                == 0
            )
        try:
            with reader.write() as connection:
                connection.execute(tables.ab_report_sums.delete())
        except sa.exc.OperationalError as error:
            assert "readonly" in str(error.orig)
        else:
            raise AssertionError("a read-only store was written")
        reader.dispose()
    assert list(elsewhere.iterdir()) == []
    db.dispose()
