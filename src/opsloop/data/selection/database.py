"""Measuring columns where the data lives: every column's null fraction and distinct count
computed by the database, one query per group of columns, and reading only chosen columns.

The first cut of a wide table (drop what is mostly missing) needs two counts per column, not
the data: ``COUNT(column)`` and ``COUNT(DISTINCT column)``, for hundreds of columns in one
``SELECT``. Groups of ``group_size`` columns keep each query under the databases' limits on
the number of result columns (SQLite 2,000, PostgreSQL 1,664 expressions).

Sources: a SQLAlchemy URL string, ``URL``, ``Engine`` or ``Connection`` (SQLite and
PostgreSQL are tested), a ``duckdb:///path`` URL (``duckdb:///:memory:`` for memory) or a
``duckdb`` connection, used through duckdb's own API. A source given as a URL is opened and
closed here; a given connection is used and left open.

>>> import sqlite3, tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     path = pathlib.Path(d) / "t.db"
...     with sqlite3.connect(path) as db:
...         _ = db.execute("CREATE TABLE t (a REAL, b TEXT)")
...         _ = db.executemany("INSERT INTO t VALUES (?, ?)", [(1.0, None), (2.0, "x")] * 2)
...     stats = null_fractions(f"sqlite:///{path}", "t")
>>> stats.n_rows, stats.null_fraction, stats.n_distinct
(4, {'a': 0.0, 'b': 0.5}, {'a': 2, 'b': 1})
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

#: Columns per query by default: 2 x 500 + 1 result expressions fit every supported database.
GROUP_SIZE = 500
DUCKDB_PREFIX = "duckdb://"


@dataclass(frozen=True)
class NullFractions:
    """Per column of a table: missing values, distinct values and the database's type name.

    >>> s = NullFractions("t", 4, ("a",), {"a": 1}, {"a": 3}, {"a": "REAL"}, 1)
    >>> s.null_fraction, s.to_frame()["null_fraction"].tolist()
    ({'a': 0.25}, [0.25])
    """

    table: str
    n_rows: int
    columns: tuple[str, ...]
    n_null: dict[str, int]
    n_distinct: dict[str, int]
    types: dict[str, str]
    queries: int

    @property
    def null_fraction(self) -> dict[str, float]:
        """Missing values / rows, per column.

        >>> NullFractions("t", 2, ("a",), {"a": 1}, {"a": 1}, {"a": "INT"}, 1).null_fraction
        {'a': 0.5}
        """
        return {c: self.n_null[c] / self.n_rows for c in self.columns}

    def to_frame(self) -> pd.DataFrame:
        """One row per column: column, type, n_null, null_fraction, n_distinct.

        >>> NullFractions("t", 2, ("a",), {"a": 1}, {"a": 1}, {"a": "INT"}, 1).to_frame().shape
        (1, 5)
        """
        fractions = self.null_fraction
        return pd.DataFrame(
            {
                "column": list(self.columns),
                "type": [self.types[c] for c in self.columns],
                "n_null": [self.n_null[c] for c in self.columns],
                "null_fraction": [fractions[c] for c in self.columns],
                "n_distinct": [self.n_distinct[c] for c in self.columns],
            }
        )

    def to_dict(self) -> dict:
        """A JSON-safe dictionary.

        >>> NullFractions("t", 2, ("a",), {"a": 0}, {"a": 2}, {"a": "INT"}, 1).to_dict()["queries"]
        1
        """
        return {
            "table": self.table,
            "n_rows": int(self.n_rows),
            "queries": int(self.queries),
            "columns": self.to_frame().to_dict("records"),
        }


class _SqlAlchemyTable:
    """A table reached through SQLAlchemy."""

    def __init__(self, connection: sa.Connection, table: str, schema: str | None) -> None:
        self.connection = connection
        self.name = table
        self.schema = schema

    def column_types(self) -> list[tuple[str, str]]:
        try:
            found = sa.inspect(self.connection).get_columns(self.name, schema=self.schema)
        except sa.exc.NoSuchTableError:
            raise ValueError(f"no table {self.name!r} in the database") from None
        return [(str(c["name"]), str(c["type"])) for c in found]

    def _from(self, names: Sequence[str]) -> sa.TableClause:
        return sa.table(self.name, *(sa.column(n) for n in names), schema=self.schema)

    def counts(self, names: Sequence[str]) -> list[int]:
        source = self._from(names)
        expressions = [sa.func.count()]
        for name in names:
            expressions.append(sa.func.count(source.c[name]))
            expressions.append(sa.func.count(sa.distinct(source.c[name])))
        row = self.connection.execute(sa.select(*expressions).select_from(source)).one()
        return [int(v) for v in row]

    def read(self, names: Sequence[str]) -> pd.DataFrame:
        source = self._from(names)
        query = sa.select(*(source.c[n] for n in names)).select_from(source)
        return pd.read_sql(query, self.connection)


def _duckdb_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _DuckDBTable:
    """A table reached through duckdb's own connection."""

    def __init__(self, connection: Any, table: str, schema: str | None) -> None:
        self.connection = connection
        self.name = table
        self.schema = schema
        qualified = _duckdb_quote(table)
        self.qualified = qualified if schema is None else f"{_duckdb_quote(schema)}.{qualified}"

    def column_types(self) -> list[tuple[str, str]]:
        query = "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?"
        params: list[str] = [self.name]
        if self.schema is not None:
            query += " AND table_schema = ?"
            params.append(self.schema)
        rows = self.connection.execute(query + " ORDER BY ordinal_position", params).fetchall()
        if not rows:
            raise ValueError(f"no table {self.name!r} in the database")
        return [(str(name), str(kind)) for name, kind in rows]

    def counts(self, names: Sequence[str]) -> list[int]:
        parts = ["COUNT(*)"]
        for name in names:
            quoted = _duckdb_quote(name)
            parts.append(f"COUNT({quoted})")
            parts.append(f"COUNT(DISTINCT {quoted})")
        row = self.connection.execute(f"SELECT {', '.join(parts)} FROM {self.qualified}").fetchone()
        return [int(v) for v in row]

    def read(self, names: Sequence[str]) -> pd.DataFrame:
        listed = ", ".join(_duckdb_quote(n) for n in names)
        return self.connection.execute(f"SELECT {listed} FROM {self.qualified}").df()


def _is_duckdb_connection(source: Any) -> bool:
    module = type(source).__module__ or ""
    return module.split(".")[0] in ("duckdb", "_duckdb") and hasattr(source, "execute")


@contextlib.contextmanager
def open_table(source: Any, table: str, schema: str | None = None) -> Iterator[Any]:
    """The table ``table`` of ``source`` (see the module's list of sources), opened for the
    duration of the ``with`` block.

    >>> import duckdb
    >>> connection = duckdb.connect()
    >>> _ = connection.execute("CREATE TABLE loans (id INTEGER, rate DOUBLE)")
    >>> _ = connection.execute("INSERT INTO loans VALUES (1, 0.5), (2, NULL), (3, 0.5)")
    >>> with open_table(connection, "loans") as table:  # rows, then non-null and distinct
    ...     table.column_types(), table.counts(["rate"])
    ([('id', 'INTEGER'), ('rate', 'DOUBLE')], [3, 2, 1])
    >>> connection.execute("SELECT count(*) FROM loans").fetchone()  # left open
    (3,)
    >>> with open_table(connection, ""):
    ...     pass
    Traceback (most recent call last):
    ValueError: table must be a non-empty name, got ''
    """
    if not isinstance(table, str) or not table:
        raise ValueError(f"table must be a non-empty name, got {table!r}")
    if isinstance(source, str) and source.startswith(DUCKDB_PREFIX):
        import duckdb

        path = source[len(DUCKDB_PREFIX) :].removeprefix("/") or ":memory:"
        connection = duckdb.connect(path)
        try:
            yield _DuckDBTable(connection, table, schema)
        finally:
            connection.close()
        return
    if _is_duckdb_connection(source):
        yield _DuckDBTable(source, table, schema)
        return
    if isinstance(source, sa.Connection):
        yield _SqlAlchemyTable(source, table, schema)
        return
    if isinstance(source, str | sa.URL):
        try:
            engine = sa.create_engine(source)
        except sa.exc.ArgumentError as error:
            raise ValueError(f"not a database URL: {source!r} ({error})") from None
        try:
            with engine.connect() as connection:
                yield _SqlAlchemyTable(connection, table, schema)
        finally:
            engine.dispose()
        return
    if isinstance(source, sa.Engine):
        with source.connect() as connection:
            yield _SqlAlchemyTable(connection, table, schema)
        return
    raise TypeError(
        "source must be a database URL, a SQLAlchemy engine or connection, or a duckdb "
        f"connection, got {type(source).__name__}"
    )


def null_fractions(
    source: Any,
    table: str,
    *,
    columns: Sequence[str] | None = None,
    schema: str | None = None,
    group_size: int | None = None,
) -> NullFractions:
    """Count each column's missing and distinct values inside the database.

    One ``SELECT COUNT(*), COUNT(c1), COUNT(DISTINCT c1), ...`` per group of ``group_size``
    columns (default :data:`GROUP_SIZE`); ``columns`` restricts the columns counted. An
    empty table is refused (a null fraction of no rows is undefined).

    >>> null_fractions("duckdb:///:memory:", "missing")
    Traceback (most recent call last):
    ...
    ValueError: no table 'missing' in the database
    """
    size = GROUP_SIZE if group_size is None else group_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"group_size must be an integer >= 1, got {group_size!r}")
    with open_table(source, table, schema) as handle:
        types = dict(handle.column_types())
        names = list(types) if columns is None else [str(c) for c in columns]
        unknown = [c for c in names if c not in types]
        if unknown:
            raise ValueError(f"table {table!r} has no column(s) {unknown}")
        if not names:
            raise ValueError(f"table {table!r} has no columns")
        n_rows = 0
        n_null: dict[str, int] = {}
        n_distinct: dict[str, int] = {}
        queries = 0
        for start in range(0, len(names), size):
            group = names[start : start + size]
            counts = handle.counts(group)
            queries += 1
            n_rows = counts[0]
            for i, name in enumerate(group):
                n_null[name] = n_rows - counts[1 + 2 * i]
                n_distinct[name] = counts[2 + 2 * i]
    if n_rows == 0:
        raise ValueError(f"table {table!r} is empty: null fractions need at least one row")
    return NullFractions(
        table, n_rows, tuple(names), n_null, n_distinct, {c: types[c] for c in names}, queries
    )


def read_columns(
    source: Any, table: str, columns: Sequence[str], *, schema: str | None = None
) -> pd.DataFrame:
    """Read only ``columns`` of ``table`` into a DataFrame, in the order given.

    >>> import duckdb
    >>> db = duckdb.connect()
    >>> _ = db.execute("CREATE TABLE t AS SELECT 1 AS a, 'x' AS b, 2.5 AS c")
    >>> read_columns(db, "t", ["c", "a"]).columns.tolist()
    ['c', 'a']
    """
    names = [str(c) for c in columns]
    if not names:
        raise ValueError("columns must name at least one column to read")
    with open_table(source, table, schema) as handle:
        known = {name for name, _ in handle.column_types()}
        unknown = [c for c in names if c not in known]
        if unknown:
            raise ValueError(f"table {table!r} has no column(s) {unknown}")
        return handle.read(names)
