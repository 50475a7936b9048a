"""Windows in the store: fold new prediction events into this worker's window parts, read a
window back as the merge of every worker's parts, expire old raw samples.

:func:`update_windows` takes the events after the deployment's cursor, in event order, and
in the same write transaction adds them to this worker's parts and moves the cursor: two
workers running it at once take disjoint batches (the transaction holds the cursor), and a
process killed half way commits nothing, so a restart neither loses nor repeats an event.

The monitoring reads the ``prediction_events`` table through :mod:`opsloop.store.tables`
rather than importing :mod:`opsloop.serving`: serving publishes events to that table and
must stay free to import monitoring later (gauges, policies acting on deployments) without a
cycle.

>>> from opsloop.monitoring.event_log import log_predictions
>>> db = Database("sqlite://", clock=lambda: 7_200_000)
>>> len(log_predictions(db, "api", [{"x": 1.0}, {"x": 3.0}], [0, 1], at_ms=1_000))
2
>>> update_windows(db, "api", Windowing("1h"))
2
>>> window = read_window(db, "api", "default", Windowing("1h"), 0)
>>> window.profile["x"].numeric.mean, window.software.requests
(2.0, 2)
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.monitoring.monitor_state import locked_state, put_state
from opsloop.monitoring.window_part import WindowPart, parts_of_events
from opsloop.monitoring.windowing import Windowing
from opsloop.store import tables
from opsloop.store.database import Database, clock_of
from opsloop.store.input_batches import read_input_batches

_events = tables.prediction_events
_windows = tables.monitoring_windows

#: The worker name of a process that gives none.
DEFAULT_WORKER = "main"


def _cursor_name(windowing: Windowing) -> str:
    return f"cursor:{windowing.window_ms}"


def update_windows(
    db: Database,
    deployment: str,
    windowing: Windowing | None = None,
    *,
    worker: str = DEFAULT_WORKER,
    batch_size: int = 50_000,
) -> int:
    """Fold the events recorded since the last call into ``worker``'s window parts; return
    how many events were folded. Raw samples of windows past their retention are dropped.
    """
    windowing = windowing or Windowing()
    total = 0
    while True:
        with db.write() as connection:
            folded = _fold_batch(connection, deployment, windowing, worker, batch_size)
            if folded == 0:
                expire_samples(connection, deployment, windowing)
        total += folded
        if folded < batch_size:
            return total


def _fold_batch(
    connection: Connection, deployment: str, windowing: Windowing, worker: str, batch_size: int
) -> int:
    name = _cursor_name(windowing)
    # Read locked: a second worker waits here and then reads the cursor this one moved
    # (writing the value read before taking the lock would move it back).
    cursor = locked_state(connection, deployment, name, {"event_id": 0})
    query = (
        sa.select(
            _events.c.id,
            _events.c.variant,
            _events.c.request_id,
            _events.c.inputs_json,
            _events.c.input_batch_id,
            _events.c.input_row,
            _events.c.output_json,
            _events.c.error,
            _events.c.latency_ms,
            _events.c.at_ms,
            _events.c.assertions_json,
        )
        .where(_events.c.deployment == deployment, _events.c.id > cursor["event_id"])
        .order_by(_events.c.id)
        .limit(batch_size)
    )
    rows = fetched_rows(connection, query)
    if not rows:
        return 0
    # Column by column: a frame built from the rows inspects each row object, and the JSON
    # texts stay Python strings (object), which the parser reads without a conversion.
    names = list(query.selected_columns.keys())
    events = pd.DataFrame(
        {
            name: pd.Series(values, dtype=object)
            for name, values in zip(names, zip(*rows, strict=True), strict=True)
        }
    )
    batch_ids = events["input_batch_id"]
    batches = read_input_batches(connection, batch_ids[batch_ids.notna()].tolist())
    for (variant, start), part in parts_of_events(events, windowing, batches).items():
        _add_part(connection, deployment, variant, windowing.window_ms, start, worker, part)
    put_state(connection, deployment, name, {"event_id": int(events["id"].iloc[-1])})
    return len(events)


def fetched_rows(connection: Connection, query: sa.Select) -> list[tuple]:
    """The rows of ``query``, as plain tuples (the driver's own rows on SQLite).

    >>> with Database("sqlite://").read() as connection:
    ...     fetched_rows(connection, sa.select(sa.literal(2) + 3, sa.literal("a")))
    [(5, 'a')]
    """
    return list(iterated_rows(connection, query))


def iterated_rows(connection: Connection, query: sa.Select) -> Iterator[tuple]:
    """The rows of ``query`` one by one, as plain tuples (the driver's own rows on
    SQLite): a reader that keeps only what it takes from each row leaves no row alive.

    >>> with Database("sqlite://").read() as connection:
    ...     [x for row in iterated_rows(connection, sa.select(sa.literal(7))) for x in row]
    [7]
    """
    if connection.dialect.name != "sqlite":
        return (tuple(row) for row in connection.execute(query))
    # The driver's own rows: unpacking SQLAlchemy's row objects into columns costs more
    # than SQLite's reading of them, and these columns need no conversion.
    compiled = query.compile(dialect=connection.dialect)
    result = connection.exec_driver_sql(
        str(compiled), tuple(compiled.params[name] for name in compiled.positiontup or ())
    )
    return iter(result.cursor)


def _add_part(connection, deployment, variant, window_ms, start, worker, part) -> None:
    key = (
        (_windows.c.deployment == deployment)
        & (_windows.c.variant == variant)
        & (_windows.c.window_ms == window_ms)
        & (_windows.c.start_ms == start)
        & (_windows.c.worker == worker)
    )
    existing = connection.execute(sa.select(_windows.c.state, _windows.c.sample).where(key)).first()
    now = clock_of(connection)
    if existing is not None:
        part = WindowPart.from_bytes(existing.state, existing.sample).merge(part)
    values = {
        "state": part.state_bytes(),
        "sample": None if part.sample is None else part.sample.to_bytes(),
        "updated_ms": now,
    }
    if existing is None:
        connection.execute(
            _windows.insert().values(
                deployment=deployment,
                variant=variant,
                window_ms=window_ms,
                start_ms=start,
                worker=worker,
                **values,
            )
        )
    else:
        connection.execute(_windows.update().where(key).values(**values))


def expire_samples(connection: Connection, deployment: str, windowing: Windowing) -> int:
    """Drop the raw samples of ``deployment``'s windows that ended more than the retention
    ago (profiles and counts stay); return how many window parts lost their sample."""
    cutoff = clock_of(connection) - windowing.sample_retention_ms - windowing.window_ms
    result = connection.execute(
        _windows.update()
        .where(
            _windows.c.deployment == deployment,
            _windows.c.window_ms == windowing.window_ms,
            _windows.c.start_ms <= cutoff,
            _windows.c.sample.is_not(None),
        )
        .values(sample=None)
    )
    return result.rowcount


def read_window(
    db: Database, deployment: str, variant: str, windowing: Windowing, start_ms: int
) -> WindowPart | None:
    """The window of ``variant`` starting at ``start_ms``: every worker's parts merged
    (``None`` when no event fell in it).

    >>> print(read_window(db, "api", "default", Windowing(), 0))
    None
    """
    with db.read() as connection:
        rows = connection.execute(
            sa.select(_windows.c.state, _windows.c.sample)
            .where(
                _windows.c.deployment == deployment,
                _windows.c.variant == variant,
                _windows.c.window_ms == windowing.window_ms,
                _windows.c.start_ms == start_ms,
            )
            .order_by(_windows.c.worker)
        ).all()
    parts = [WindowPart.from_bytes(row.state, row.sample) for row in rows]
    if not parts:
        return None
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    return merged


def window_starts(db: Database, deployment: str, windowing: Windowing) -> pd.DataFrame:
    """The windows ``deployment`` has, one row per variant and start (``variant``,
    ``start_ms``, ``workers``), oldest first.

    >>> window_starts(db, "api", Windowing()).columns.tolist()
    ['variant', 'start_ms', 'workers']
    """
    with db.read() as connection:
        rows = connection.execute(
            sa.select(_windows.c.variant, _windows.c.start_ms, sa.func.count().label("workers"))
            .where(_windows.c.deployment == deployment, _windows.c.window_ms == windowing.window_ms)
            .group_by(_windows.c.variant, _windows.c.start_ms)
            .order_by(_windows.c.start_ms, _windows.c.variant)
        ).all()
    return pd.DataFrame(rows, columns=["variant", "start_ms", "workers"])
