"""A long metric series shrunk to the lowest and highest point of each step bucket, read from
the block summaries kept as points are written (:mod:`opsloop.store.metric_blocks`), so a
chart's cost grows with its number of buckets, not with the series' length.

The step range ``[low, high]`` is cut into ``buckets`` equal intervals exactly as
:func:`opsloop.ui.series_downsampling.min_max_downsample` cuts it (the same float
arithmetic: ``(step - low) / (high - low) * buckets``, truncated, the last bucket closed),
and each keeps its minimum (the earliest, in step then logging order, among equal values)
and its maximum (the latest). A point's bucket never decreases as its step grows, so a block
whose first and last steps fall in one bucket lies wholly in it and its summary stands for
its points. Reading starts at the coarsest level whose blocks are no wider than a bucket;
a block that straddles a bucket boundary is replaced by its blocks one level finer, and at
the finest level (16 steps) by its points. Per boundary that is at most 16 blocks per level
and one finest block of points, whatever the series' length. The points chosen are then
read by key, with their timestamps: the same points that function returns on the whole
series.
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.store import tables
from opsloop.store.metric_blocks import LEVEL_SHIFTS

_points = tables.metrics
_blocks = tables.metric_blocks
# Step ranges per statement: SQLite allows 500 SELECTs in one compound statement.
_RANGES_PER_QUERY = 200
_BLOCK_COLUMNS = "step_first, step_last, min_value, min_step, min_seq, max_value, max_step, max_seq"
_BLOCKS_IN = (
    f"SELECT {_BLOCK_COLUMNS} FROM metric_blocks "
    "WHERE run_id = {m} AND key_id = {m} AND level = {m} AND block BETWEEN {m} AND {m}"
)
_BLOCKS_OF_LEVEL = (
    f"SELECT {_BLOCK_COLUMNS} FROM metric_blocks "
    "WHERE run_id = :run AND key_id = :key AND level = :level"
)
_POINTS_IN = (
    "SELECT step, seq, value FROM metrics "
    "WHERE run_id = {m} AND key_id = {m} AND step BETWEEN {m} AND {m}"
)


def series_sizes(connection: Connection, chosen) -> list[tuple]:
    """``(run_pk, key_id, key, points, low step, high step)`` of each series among
    ``chosen`` (a condition on ``metric_blocks`` and ``metric_keys``), from the coarsest
    summaries (one row per 65,536 steps)."""
    top = len(LEVEL_SHIFTS) - 1
    names = tables.metric_keys
    return connection.execute(
        sa.select(
            _blocks.c.run_id,
            _blocks.c.key_id,
            names.c.name,
            sa.func.sum(_blocks.c.points),
            sa.func.min(_blocks.c.step_first),
            sa.func.max(_blocks.c.step_last),
        )
        .join(names, names.c.id == _blocks.c.key_id)
        .where(chosen, _blocks.c.level == top)
        .group_by(_blocks.c.run_id, _blocks.c.key_id, names.c.name)
    ).all()


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive ``[first, last]`` ranges, sorted, overlapping or touching ones joined (rows
    come back in no particular order from PostgreSQL)."""
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [(a, b) for a, b in merged]


def _in_ranges(
    connection: Connection, select: str, fixed: tuple, ranges: list[tuple[int, int]]
) -> list:
    """Rows of ``select`` (SQL text whose placeholders are ``{m}``: ``fixed`` values, then a
    range's first and last) for each of ``ranges``. One branch of a UNION ALL per range: each
    is a key-range scan, where an OR of ranges makes SQLite scan the whole series; written
    as text because compiling hundreds of branches costs more than running them."""
    marker = "?" if connection.dialect.name == "sqlite" else "%s"
    branch = select.format(m=marker)
    rows: list = []
    for start in range(0, len(ranges), _RANGES_PER_QUERY):
        part = ranges[start : start + _RANGES_PER_QUERY]
        sql = " UNION ALL ".join([branch] * len(part))
        params = tuple(value for a, b in part for value in (*fixed, a, b))
        rows += connection.exec_driver_sql(sql, params).all()
    return rows


def reduced_points(
    connection: Connection, run_pk: int, key_id: int, low: int, high: int, buckets: int
) -> list[tuple[int, float, int]]:
    """The ``(step, value, timestamp_ms)`` points kept of one run's series of key ``key_id``
    whose steps run from ``low`` to ``high``, in step then logging order."""
    low_f, high_f = float(low), float(high)
    span = high_f - low_f

    def bucket_of(steps: np.ndarray) -> np.ndarray:
        if span == 0:  # every point at one step: a single bucket
            return np.zeros(len(steps), dtype=np.int64)
        position = (steps.astype(np.float64) - low_f) / span * buckets
        return np.minimum(position.astype(np.int64), buckets - 1)

    width = span / buckets
    level = max([i for i, shift in enumerate(LEVEL_SHIFTS) if 2**shift <= width] or [0])
    # Candidates for each bucket's minimum and maximum: (bucket, value, step, seq).
    lows: list[np.ndarray] = []
    highs: list[np.ndarray] = []
    straddling: list[tuple[int, int]] | None = None  # None: the whole series
    while True:
        shift = LEVEL_SHIFTS[level]
        if straddling is None:
            rows = connection.execute(
                sa.text(_BLOCKS_OF_LEVEL), {"run": run_pk, "key": key_id, "level": level}
            ).all()
        else:
            wanted = [(a >> shift, b >> shift) for a, b in straddling]
            rows = _in_ranges(connection, _BLOCKS_IN, (run_pk, key_id, level), _merged(wanted))
        columns = list(zip(*rows, strict=True)) or [()] * 8
        # Steps and sequence numbers as integers: they may exceed a float's 53 bits.
        step_first, step_last, min_step, min_seq, max_step, max_seq = (
            np.array(columns[i], dtype=np.int64) for i in (0, 1, 3, 4, 6, 7)
        )
        min_value, max_value = (np.array(columns[i], dtype=np.float64) for i in (2, 5))
        first, last = bucket_of(step_first), bucket_of(step_last)
        inside = first == last
        if inside.any():
            lows.append((first[inside], min_value[inside], min_step[inside], min_seq[inside]))
            highs.append((first[inside], max_value[inside], max_step[inside], max_seq[inside]))
        straddling = [
            (a, b)
            for a, b in zip(step_first[~inside].tolist(), step_last[~inside].tolist(), strict=True)
        ]
        if not straddling or level == 0:
            break
        level -= 1
    if straddling:
        raw = _in_ranges(connection, _POINTS_IN, (run_pk, key_id), _merged(straddling))
        steps = np.array([row[0] for row in raw], dtype=np.int64)
        seqs = np.array([row[1] for row in raw], dtype=np.int64)
        values = np.array([row[2] for row in raw], dtype=np.float64)
        candidates = (bucket_of(steps), values, steps, seqs)
        lows.append(candidates)
        highs.append(candidates)
    keep: set[tuple[int, int]] = set()
    for parts, end in ((lows, 0), (highs, -1)):
        bucket, value, step, seq = (np.concatenate(column) for column in zip(*parts, strict=True))
        order = np.lexsort((seq, step, value, bucket))
        bucket = bucket[order]
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        picked = order[starts] if end == 0 else order[np.r_[starts[1:] - 1, len(order) - 1]]
        keep.update(zip(step[picked].tolist(), seq[picked].tolist(), strict=True))
    rows = connection.execute(
        sa.select(_points.c.step, _points.c.seq, _points.c.value, _points.c.timestamp_ms)
        .where(
            _points.c.run_id == run_pk,
            _points.c.key_id == key_id,
            _points.c.step.in_(sorted({step for step, _ in keep})),
        )
        .order_by(_points.c.step, _points.c.seq)
    ).all()
    return [(step, value, stamp) for step, seq, value, stamp in rows if (step, seq) in keep]
