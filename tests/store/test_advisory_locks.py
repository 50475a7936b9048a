"""A name's advisory locks: on PostgreSQL each is the two-key transaction lock of its class
and the name's digest (read back from pg_locks), a lock of one class never waits for a lock
of another class on the same name, and the same class and name exclude each other unless
both are shared; on SQLite no statement is run."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from opsloop.store.advisory_locks import LockClass, hold_lock
from opsloop.store.database import Database


def _digest_key(name: str) -> int:
    """The name's key derived by hand: blake2b's first four bytes, big-endian, read as a
    signed 32-bit number ("api" is positive, "fraud" negative)."""
    unsigned = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big")
    return unsigned - 2**32 if unsigned >= 2**31 else unsigned


def _held(connection) -> list[tuple[int, int, int, str]]:
    """The advisory locks this connection's backend holds: (classid, objid, objsubid, mode)."""
    return sorted(
        tuple(row)
        for row in connection.execute(
            sa.text(
                "SELECT classid::bigint, objid::bigint, objsubid, mode FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
            )
        )
    )


def _tries(db: Database, lock_class: LockClass, name: str, *, shared: bool) -> bool:
    """Whether another connection gets the lock now (without waiting), released at once."""
    function = "pg_try_advisory_xact_lock_shared" if shared else "pg_try_advisory_xact_lock"
    with db.engine.connect() as other:
        got = other.execute(
            sa.text(f"SELECT {function}(:kind, :key)"),
            {"kind": int(lock_class), "key": _digest_key(name)},
        ).scalar_one()
        other.rollback()
    return got


@pytest.fixture
def db(postgres_store_database):
    """The session's PostgreSQL store (its advisory locks are the server's, not a table's)."""
    database = Database(postgres_store_database)
    yield database
    database.dispose()


def test_the_classes_are_the_values_the_stored_locks_always_used():
    # The classes are what the three uses took before they shared this module: a change
    # would let a process of the old code and one of the new miss each other's locks.
    assert (LockClass.MONITOR, LockClass.RECORDS, LockClass.ANSWERS) == (
        0x6F706D6E,
        0x6F70726E,
        0x6F707302,
    )
    assert len({int(lock) for lock in LockClass}) == len(LockClass)


def test_sqlite_takes_no_lock_and_runs_no_statement(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    seen: list[str] = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda c, cur, s, *rest: seen.append(s))
    with db.write() as connection:
        before = len(seen)
        for lock_class in LockClass:
            hold_lock(connection, lock_class, "api", shared=False)
            hold_lock(connection, lock_class, "api", shared=True)
        assert seen[before:] == []
    db.dispose()


@pytest.mark.postgres
def test_a_lock_is_its_class_and_the_names_digest_held_until_the_transaction_ends(db):
    with db.write() as connection:
        hold_lock(connection, LockClass.ANSWERS, "api", shared=True)
        hold_lock(connection, LockClass.RECORDS, "api")
        hold_lock(connection, LockClass.MONITOR, "fraud", shared=False)
        held = _held(connection)
    # pg_locks shows the two 32-bit keys as unsigned oids, and 2 as the two-key form.
    expected = sorted(
        [
            (0x6F707302, _digest_key("api") % 2**32, 2, "ShareLock"),
            (0x6F70726E, _digest_key("api") % 2**32, 2, "ExclusiveLock"),
            (0x6F706D6E, _digest_key("fraud") % 2**32, 2, "ExclusiveLock"),
        ]
    )
    assert held == expected
    with db.engine.connect() as connection:
        assert _held(connection) == []


@pytest.mark.postgres
def test_one_class_never_waits_for_another_and_shared_holders_share(db):
    with db.write() as connection:
        hold_lock(connection, LockClass.RECORDS, "api")
        hold_lock(connection, LockClass.MONITOR, "api", shared=True)
        # The name's other classes are free, to anyone.
        assert _tries(db, LockClass.ANSWERS, "api", shared=False)
        # Its exclusive lock excludes shared and exclusive alike.
        assert not _tries(db, LockClass.RECORDS, "api", shared=True)
        assert not _tries(db, LockClass.RECORDS, "api", shared=False)
        # A shared lock admits shared holders only.
        assert _tries(db, LockClass.MONITOR, "api", shared=True)
        assert not _tries(db, LockClass.MONITOR, "api", shared=False)
        # Another name of the same class is free.
        assert _tries(db, LockClass.RECORDS, "fraud", shared=False)
    assert _tries(db, LockClass.RECORDS, "api", shared=False)
