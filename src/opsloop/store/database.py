"""Open the store's database, migrated to the newest revision, with safe transactions.

SQLite (the default, a file under ``OPSLOOP_HOME``) is opened in WAL mode, so readers never
wait for the writer, with a 60 s busy timeout and foreign keys on. Every write transaction
on SQLite starts with ``BEGIN IMMEDIATE``: it takes the write lock up front, so concurrent
processes queue on the busy timeout instead of failing with "database is locked" when a
read transaction tries to turn into a write. PostgreSQL (``OPSLOOP_STORE_URI``) needs none
of this; there, migrations hold an advisory lock so that two processes starting at once do
not both create the tables.

>>> from opsloop.store import tables
>>> db = Database("sqlite://")
>>> with db.write() as connection:
...     _ = connection.execute(tables.experiments.insert().values(name="a", created_ms=0))
>>> with db.read() as connection:
...     connection.execute(sa.select(tables.experiments.c.name)).scalar_one()
'a'
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from opsloop.errors import InvalidArgumentError
from opsloop.store.location import store_uri
from opsloop.store.migrate import upgrade_to_head
from opsloop.store.private_files import private_file

BUSY_TIMEOUT_MS = 60_000
# Any constant works; it only has to be the same in every process migrating one database.
_MIGRATION_LOCK_KEY = 0x6F70736C6F6F70


def now_ms() -> int:
    """Milliseconds since the epoch, the store's unit of time.

    >>> import time
    >>> abs(now_ms() - time.time() * 1000) < 1_000
    True
    """
    return time.time_ns() // 1_000_000


def clock_of(connection: Connection) -> int:
    """Now, in milliseconds, by the clock of the :class:`Database` that opened
    ``connection`` (the wall clock for a connection opened elsewhere).

    ``db`` is an empty in-memory store; a store opened with another clock stamps its
    changes by it:

    >>> with Database("sqlite://", clock=lambda: 42).write() as c:
    ...     clock_of(c)
    42
    >>> with db.read() as c:
    ...     abs(clock_of(c) - now_ms()) < 1_000
    True
    """
    return connection.info.get(_CLOCK, now_ms)()


_CLOCK = "opsloop_clock"


class Database:
    """An engine on the store's database, migrated on open, with read and write transactions.

    ``uri`` is a SQLAlchemy URI (``sqlite:///path``, ``sqlite://`` for memory,
    ``postgresql+psycopg://...``); ``None`` means :func:`~opsloop.store.location.store_uri`.

    >>> Database("sqlite://").dialect
    'sqlite'
    """

    def __init__(
        self,
        uri: str | None = None,
        *,
        migrate: bool = True,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.uri = uri or store_uri()
        #: Now in milliseconds, for every time the store records (:func:`now_ms` unless a
        #: test or a replay gives another clock); read it with ``db.clock()``.
        self.clock: Callable[[], int] = clock or now_ms
        url = sa.make_url(self.uri)
        self.dialect = url.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise InvalidArgumentError(
                f"store URI {url.render_as_string(hide_password=True)!r}: "
                "only sqlite and postgresql databases are supported"
            )
        self._memory = self.dialect == "sqlite" and url.database in (None, "", ":memory:")
        self.engine = self._create_engine(url)
        # One shared connection serves a memory database, so its users take turns.
        self._turns = threading.RLock() if self._memory else nullcontext()
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"Database({sa.make_url(self.uri).render_as_string(hide_password=True)!r})"

    def _create_engine(self, url: sa.URL) -> Engine:
        if self.dialect != "sqlite":
            return sa.create_engine(url, pool_pre_ping=True)
        if self._memory:
            engine = sa.create_engine(
                "sqlite://",
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
            )
        else:
            # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
            # database file's mode, and the file holds token hashes and the audit log.
            path = _sqlite_file_path(url)
            # A read-only open never creates the file (SQLite refuses a missing one).
            if url.query.get("mode") != "ro":
                private_file(path)
            engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine, wal=not self._memory)
        return engine

    def migrate(self) -> None:
        """Bring the database to the newest revision (safe to call from many processes).

        >>> db = Database("sqlite://", migrate=False)
        >>> db.migrate()
        >>> with db.read() as c:
        ...     c.execute(sa.text("select version_num from alembic_version")).scalar_one()
        '0034'
        """
        with self.write() as connection:
            if self.dialect == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            upgrade_to_head(connection)

    @contextmanager
    def write(self, *, lock_wait_ms: int | None = None) -> Iterator[Connection]:
        """A connection in a write transaction: committed on exit, rolled back on error.

        ``lock_wait_ms`` bounds how long the transaction waits for a lock another one holds
        (the whole busy timeout by default): past it, SQLite's ``BEGIN IMMEDIATE`` fails
        with "database is locked" and PostgreSQL's statement with ``lock_not_available``,
        for a write that can be skipped rather than wait.

        ``db`` is an empty in-memory store:

        >>> from opsloop.store import tables
        >>> with db.write() as c:
        ...     _ = c.execute(tables.metric_keys.insert().values(name="auc"))
        >>> try:
        ...     with db.write() as c:
        ...         _ = c.execute(tables.metric_keys.insert().values(name="loss"))
        ...         raise RuntimeError("stopped before the end of the transaction")
        ... except RuntimeError:
        ...     pass
        >>> with db.read() as c:
        ...     [row.name for row in c.execute(tables.metric_keys.select())]
        ['auc']
        >>> with db.write(lock_wait_ms=200) as c:
        ...     _ = c.execute(tables.metric_keys.insert().values(name="f1"))
        >>> with db.read() as c:
        ...     c.execute(sa.select(sa.func.count()).select_from(tables.metric_keys)).scalar()
        2
        """
        with self._turns, self.engine.connect() as connection:
            connection.execution_options(opsloop_write=True)
            connection.info[_CLOCK] = self.clock
            if lock_wait_ms is None:
                with connection.begin():
                    yield connection
            elif self.dialect == "sqlite":
                # The wait of BEGIN IMMEDIATE is the connection's busy timeout, set before it
                # and given back after, as the pooled connection is reused.
                raw = connection.connection.dbapi_connection
                assert raw is not None
                raw.execute(f"PRAGMA busy_timeout = {int(lock_wait_ms)}")
                try:
                    with connection.begin():
                        yield connection
                finally:
                    raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            else:
                with connection.begin():
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_wait_ms)}")
                    yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction: every statement in it sees one snapshot.

        SQLite in WAL mode gives that to every transaction; PostgreSQL's default (READ
        COMMITTED) gives each statement its own, so a read made of several statements could
        mix two versions of the data: there the transaction is REPEATABLE READ (which never
        fails a transaction that only reads).

        >>> from opsloop.store import tables
        >>> with Database("sqlite://").read() as c:
        ...     c.execute(sa.select(sa.func.count()).select_from(tables.runs)).scalar_one()
        0
        """
        with self._turns, self.engine.connect() as connection, connection.begin():
            connection.info[_CLOCK] = self.clock
            if self.dialect == "postgresql":
                connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield connection

    def read_value(self, sql: str) -> object:
        """The first value of the first row (``None`` for no row) of one plain SQL
        ``SELECT``, for a small read made on every request: run on the driver's own pooled
        connection, it skips SQLAlchemy's statement and result machinery, which costs about
        ten times such a read on SQLite. A single statement sees one snapshot of committed
        data by itself, so no transaction is opened for it (a memory database, whose one
        connection is shared, takes the ordinary path).

        >>> Database("sqlite://").read_value("SELECT 1 + 1")
        2
        """
        if self._memory:
            with self.read() as connection:
                return connection.exec_driver_sql(sql).scalar()
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(sql)
                row = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            raw.close()  # back to the pool, which ends the driver's transaction
        return None if row is None else row[0]

    def dispose(self) -> None:
        """Close the pooled connections (the object can still be used; it reconnects).

        >>> Database("sqlite://").dispose()
        """
        self.engine.dispose()


def _sqlite_file_path(url: sa.URL) -> str:
    """The file of a SQLite database URL. With ``uri=true`` the database part is a SQLite
    URI filename (``file:/path`` or ``file:///path``, its options in the URL's query), whose
    file is the path after ``file:`` and an empty authority."""
    path = str(url.database)
    if url.query.get("uri") == "true" and path.startswith("file:"):
        path = path.removeprefix("file:")
        if path.startswith("///"):
            path = path[2:]
    return path


def _configure_sqlite(engine: Engine, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # The driver's own transaction handling is turned off so that BEGIN is ours to send.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if wal:
            cursor.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL is durable against application crashes; only a power loss
            # can drop the last transactions, never corrupt the file.
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # LIKE is case-sensitive on PostgreSQL; the same filter must select the same runs here.
        cursor.execute("PRAGMA case_sensitive_like = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("opsloop_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


_OPENED: dict[tuple[int, str], Database] = {}
_OPENED_LOCK = threading.Lock()


def open_database(uri: str | None = None) -> Database:
    """The process's :class:`Database` for ``uri`` (default: the configured store), opened once.

    >>> open_database("sqlite://") is open_database("sqlite://")
    True
    """
    key = (os.getpid(), uri or store_uri())
    with _OPENED_LOCK:
        database = _OPENED.get(key)
        if database is None:
            database = _OPENED[key] = Database(key[1])
        return database
