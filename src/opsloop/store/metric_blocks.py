"""Per-block summaries of metric series, kept as points are written (``metric_blocks``).

A chart of a million-point series needs the lowest and highest point of each of a few
hundred step buckets. Reading every point for that makes a chart's cost grow with the
series; these summaries make it grow with the number of buckets instead. The steps of a
series are cut into blocks of ``16 ** (level + 1)`` steps at each of :data:`LEVEL_SHIFTS`
(block ``step >> shift``), and each block keeps its point count, its first and last step,
and its minimum and maximum with where they are: the minimum is the earliest point (in
step, then logging order) among equal values, the maximum the latest, the same choice
:func:`opsloop.ui.series_downsampling.min_max_downsample` makes. Summaries merge exactly,
so a write adds its points' summaries to the stored ones (:data:`UPSERT_COLUMNS`,
:func:`upsert_sql`) and the order of writes does not matter.
"""

from __future__ import annotations

import numpy as np

#: Block sizes of the levels, as powers of two: 16, 256, 4,096 and 65,536 steps. Four
#: levels keep a chart's reads to a few tens of thousands of rows for series spanning up to
#: about 10^9 steps, at four summary rows per key for a write of one point.
LEVEL_SHIFTS = (4, 8, 12, 16)

UPSERT_COLUMNS = (
    "run_id",
    "key_id",
    "level",
    "block",
    "points",
    "step_first",
    "step_last",
    "min_value",
    "min_step",
    "min_seq",
    "max_value",
    "max_step",
    "max_seq",
)


def block_summaries(
    run_id: int, key_ids: np.ndarray, steps: np.ndarray, seqs: np.ndarray, values: np.ndarray
) -> list[tuple]:
    """Rows of ``metric_blocks`` (in :data:`UPSERT_COLUMNS` order) for a set of points of one
    run, one per key, level and block they fall in.

    >>> rows = block_summaries(1, np.array([5, 5, 5]), np.array([0, 3, 20]),
    ...                        np.array([1, 2, 3]), np.array([2.0, 2.0, 7.0]))
    >>> rows[0]  # level 0, block 0: steps 0 and 3, the minimum 2.0 first at step 0
    (1, 5, 0, 0, 2, 0, 3, 2.0, 0, 1, 2.0, 3, 2)
    >>> [row[2:5] for row in rows]  # (level, block, points)
    [(0, 0, 2), (0, 1, 1), (1, 0, 3), (2, 0, 3), (3, 0, 3)]
    """
    key = np.asarray(key_ids, dtype=np.int64)
    step = np.asarray(steps, dtype=np.int64)
    seq = np.asarray(seqs, dtype=np.int64)
    value = np.asarray(values, dtype=np.float64)
    ones = np.ones(len(step), dtype=np.int64)
    # Level 0 from the points (each its own one-point summary), every coarser level from the
    # one below: summaries merge exactly, and there are 16 times fewer of them to sort.
    level = _merge(key, step >> LEVEL_SHIFTS[0], ones, step, step, (value, step, seq), None)
    rows = [(0, level)]
    for depth in range(1, len(LEVEL_SHIFTS)):
        key, block, points, first, last, *extremes = level
        parent = block >> (LEVEL_SHIFTS[depth] - LEVEL_SHIFTS[depth - 1])
        level = _merge(key, parent, points, first, last, extremes[:3], extremes[3:])
        rows.append((depth, level))
    return [
        (run_id, key, depth, *rest)
        for depth, level in rows
        for key, *rest in zip(*(column.tolist() for column in level), strict=True)
    ]


def _merge(key, block, points, first, last, low, high) -> tuple[np.ndarray, ...]:
    """Summaries of the same (key, block) merged: ``low`` and ``high`` are the (value, step,
    seq) columns of each one's minimum and maximum (``high`` None: the same as ``low``, as
    for single points)."""
    # Ascending by key, block, then (value, step, seq): a group's first row holds its
    # minimum, its last row its maximum.
    by_low = np.lexsort((low[2], low[1], low[0], block, key))
    by_high = by_low if high is None else np.lexsort((high[2], high[1], high[0], block, key))
    high = low if high is None else high
    key_sorted, block_sorted = key[by_low], block[by_low]
    starts = np.flatnonzero(
        np.r_[
            True,
            (key_sorted[1:] != key_sorted[:-1]) | (block_sorted[1:] != block_sorted[:-1]),
        ]
    )
    ends = np.r_[starts[1:], len(key_sorted)] - 1
    return (
        key_sorted[starts],
        block_sorted[starts],
        np.add.reduceat(points[by_low], starts),
        np.minimum.reduceat(first[by_low], starts),
        np.maximum.reduceat(last[by_low], starts),
        *(column[by_low][starts] for column in low),
        *(column[by_high][ends] for column in high),
    )


def upsert_sql(marker: str) -> str:
    """The statement that adds summary rows to the stored ones, with ``marker`` as the
    driver's placeholder (``?`` for SQLite, ``%s`` for psycopg); the same text runs on both.

    >>> upsert_sql("?").startswith("INSERT INTO metric_blocks (run_id, key_id, level,")
    True
    """
    t = "metric_blocks"

    def pick(wins: str, column: str) -> str:
        return f"{column} = CASE WHEN {wins} THEN excluded.{column} ELSE {t}.{column} END"

    # Row values compare lexicographically: (value, step, seq). Every right-hand side reads
    # the row as it was before this update.
    def row(prefix: str, kind: str) -> str:
        return f"({prefix}.{kind}_value, {prefix}.{kind}_step, {prefix}.{kind}_seq)"

    lower = f"{row('excluded', 'min')} < {row(t, 'min')}"
    higher = f"{row('excluded', 'max')} > {row(t, 'max')}"
    sets = [
        f"points = {t}.points + excluded.points",
        pick(f"excluded.step_first < {t}.step_first", "step_first"),
        pick(f"excluded.step_last > {t}.step_last", "step_last"),
        *(pick(lower, c) for c in ("min_value", "min_step", "min_seq")),
        *(pick(higher, c) for c in ("max_value", "max_step", "max_seq")),
    ]
    return (
        f"INSERT INTO {t} ({', '.join(UPSERT_COLUMNS)}) "
        f"VALUES ({', '.join([marker] * len(UPSERT_COLUMNS))}) "
        f"ON CONFLICT (run_id, key_id, level, block) DO UPDATE SET {', '.join(sets)}"
    )
