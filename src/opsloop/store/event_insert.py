"""Prediction events inserted many at a time, given column by column: what
:func:`opsloop.monitoring.log_predictions` and the serving runtime's event sink
(:class:`opsloop.serving.prediction_events.StoreEventSink`) both write with.

On SQLite the rows go to the driver's own ``executemany`` as tuples: SQLAlchemy's
preparation of each row's parameters costs more than SQLite's insert of the row.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.store import tables

_events = tables.prediction_events


def insert_event_columns(connection: Connection, columns: dict[str, list], shared: dict) -> None:
    """Insert into ``prediction_events`` the events given column by column (one list per
    column, all of one length), with the values ``shared`` by all of them (columns left out
    are null), inside the caller's transaction.

    >>> from opsloop.store.database import Database
    >>> db = Database("sqlite://")
    >>> with db.write() as connection:
    ...     insert_event_columns(connection, {"request_id": ["a", "b"], "at_ms": [1, 2]},
    ...         {"deployment": "api", "variant": "s", "role": "primary", "model": "m",
    ...          "version": 1, "latency_ms": 0.5})
    >>> db.read_value("SELECT group_concat(request_id || ':' || at_ms) FROM prediction_events")
    'a:1,b:2'
    """
    if connection.dialect.name == "sqlite":
        # The driver's executemany on tuples: SQLAlchemy's own preparation of each row's
        # parameters costs more than SQLite's insert of it. The shared values are written
        # into the statement (quoted by SQLAlchemy), so that SQLite binds only the values
        # that differ from row to row; text with a NUL character, which a statement cannot
        # hold, is bound with every row.
        n = len(next(iter(columns.values())))
        bound = {k: v for k, v in shared.items() if isinstance(v, str) and "\x00" in v}
        columns = {**columns, **{name: [value] * n for name, value in bound.items()}}
        shared = {k: v for k, v in shared.items() if k not in bound}
        written: dict[str, Any] = {
            name: sa.literal_column(
                str(
                    sa.literal(value, _events.c[name].type).compile(
                        dialect=connection.dialect, compile_kwargs={"literal_binds": True}
                    )
                )
            )
            for name, value in shared.items()
        }
        statement = _events.insert().values(
            **{name: sa.bindparam(name) for name in columns}, **written
        )
        compiled = statement.compile(dialect=connection.dialect)
        order = compiled.positiontup or list(columns)
        connection.exec_driver_sql(
            str(compiled), list(zip(*(columns[k] for k in order), strict=True))
        )
    else:
        # PostgreSQL: SQLAlchemy batches the rows into multi-row INSERTs.
        names = list(columns)
        connection.execute(
            _events.insert(),
            [
                {**shared, **dict(zip(names, row, strict=True))}
                for row in zip(*columns.values(), strict=True)
            ],
        )
