"""A long metric series shrunk in the database to the lowest and highest point of each step
bucket, so a chart of a million points reads a few hundred rows rather than a million.

The step range ``[low, high]`` is cut into ``buckets`` equal intervals exactly as
:func:`opsloop.ui.series_downsampling.min_max_downsample` cuts it (the same float
arithmetic: ``(step - low) / (high - low) * buckets``, truncated, the last bucket closed),
and each keeps its minimum (the earliest, in step then logging order, among equal values)
and its maximum (the latest). The database finds each bucket's extreme values and the steps
that hold them with grouped aggregates over the series' primary-key range; the rows at those
steps are then read by key and the earliest and latest picked here, so the points are the
ones that function returns on the whole series, with their timestamps.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.store import tables

_points = tables.metrics


def _bucket(connection: Connection, low: int, high: int, buckets: int):
    """The bucket of each point, as SQL (an integer from 0 to ``buckets - 1``)."""
    if high == low:  # every point at one step: a single bucket
        return sa.literal(0, sa.BigInteger)
    position = (sa.cast(_points.c.step, sa.Float(53)) - float(low)) / float(high - low) * buckets
    # CAST truncates in SQLite and rounds in PostgreSQL: floor first where it rounds.
    if connection.dialect.name != "sqlite":
        position = sa.func.floor(position)
    index = sa.cast(position, sa.BigInteger)
    return sa.case((index >= buckets, buckets - 1), else_=index)


def reduced_points(
    connection: Connection, run_pk: int, key_id: int, low: int, high: int, buckets: int
) -> list[tuple[int, float, int]]:
    """The ``(step, value, timestamp_ms)`` points kept of one run's series of key ``key_id``
    whose steps run from ``low`` to ``high``, in step then logging order."""
    series = (_points.c.run_id == run_pk) & (_points.c.key_id == key_id)
    bucketed = (
        sa.select(
            _points.c.step, _points.c.value, _bucket(connection, low, high, buckets).label("b")
        )
        .where(series)
        .subquery()
    )
    extremes = (
        sa.select(
            bucketed.c.b,
            sa.func.min(bucketed.c.value).label("low"),
            sa.func.max(bucketed.c.value).label("high"),
        )
        .group_by(bucketed.c.b)
        .subquery()
    )
    ends = (
        sa.select(
            extremes.c.low,
            extremes.c.high,
            sa.func.min(sa.case((bucketed.c.value == extremes.c.low, bucketed.c.step))),
            sa.func.max(sa.case((bucketed.c.value == extremes.c.high, bucketed.c.step))),
        )
        .join(extremes, extremes.c.b == bucketed.c.b)
        .where((bucketed.c.value == extremes.c.low) | (bucketed.c.value == extremes.c.high))
        .group_by(bucketed.c.b, extremes.c.low, extremes.c.high)
    )
    wanted = connection.execute(ends).all()
    steps = sorted({s for row in wanted for s in row[2:]})
    rows = connection.execute(
        sa.select(_points.c.step, _points.c.seq, _points.c.value, _points.c.timestamp_ms)
        .where(series, _points.c.step.in_(steps))
        .order_by(_points.c.step, _points.c.seq)
    ).all()
    at_step: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        at_step.setdefault(row[0], []).append(i)
    keep = set()
    for value_low, value_high, step_low, step_high in wanted:
        lows = [i for i in at_step[step_low] if rows[i][2] == value_low]
        highs = [i for i in at_step[step_high] if rows[i][2] == value_high]
        keep.update((lows[0], highs[-1]))
    return [(rows[i][0], rows[i][2], rows[i][3]) for i in sorted(keep)]
