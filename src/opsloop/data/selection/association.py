"""Association between categorical columns: the contingency table of two code arrays, its
Pearson chi-square and Cramér's V, and the correlation ratio of numbers grouped by levels.

Written on integer codes rather than with ``pandas.crosstab`` and
``scipy.stats.chi2_contingency`` per pair because a funnel compares every pair of categorical
columns: thousands of pairs, each a crosstab of the whole column. :func:`pairwise_contingency`
counts all of them with one chunked matrix product instead. The numbers are the same:
:func:`cramers_v` equals ``scipy.stats.contingency.association(table, method="cramer")`` on
the pairwise-complete table with its empty rows and columns removed.

>>> import numpy as np
>>> a = np.array([0, 0, 1, 1, 2, 2, -1])
>>> b = np.array([0, 0, 1, 1, 1, 1, 0])
>>> contingency(a, 3, b, 2)
array([[2, 0],
       [0, 2],
       [0, 2]])
>>> round(cramers_v(a, 3, b, 2), 6)
1.0
"""

from __future__ import annotations

import numpy as np


def contingency(a: np.ndarray, levels_a: int, b: np.ndarray, levels_b: int) -> np.ndarray:
    """Counts of each (level of a, level of b) over rows where both are present (code >= 0)."""
    present = (a >= 0) & (b >= 0)
    if present.all():
        index = a.astype(np.int64) * levels_b + b
    else:
        index = a[present].astype(np.int64) * levels_b + b[present]
    return np.bincount(index, minlength=levels_a * levels_b).reshape(levels_a, levels_b)


def chi_square(table: np.ndarray) -> tuple[float, int, int]:
    """Pearson's chi-square of a table without empty rows or columns: ``(statistic, n,
    min(rows, columns))``.

    >>> chi_square(np.array([[10, 0], [0, 10]]))
    (20.0, 20, 2)
    """
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    n = int(table.sum())
    if n == 0 or min(table.shape) < 2:
        return float("nan"), n, min(table.shape)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, n, min(table.shape)


def cramers_v(a: np.ndarray, levels_a: int, b: np.ndarray, levels_b: int) -> float:
    """Cramér's V of two code arrays (``-1`` missing); NaN when either is constant where
    both are present."""
    return cramers_v_of_table(contingency(a, levels_a, b, levels_b))


def correlation_ratio(codes: np.ndarray, levels: int, numbers: np.ndarray) -> float:
    """eta of ``numbers`` grouped by ``codes`` over rows with a level: the square root of the
    share of their variance that lies between levels; NaN when the numbers are constant.

    >>> round(correlation_ratio(np.array([0, 0, 1, 1]), 2, np.array([1.0, 1.0, 3.0, 3.0])), 6)
    1.0
    """
    present = codes >= 0
    values = numbers[present]
    groups = codes[present]
    if values.size < 2:
        return float("nan")
    mean = values.mean()
    centred = values - mean
    total = float(centred @ centred)
    if total <= 1e-12 * float(values @ values):
        return float("nan")
    counts = np.bincount(groups, minlength=levels)
    sums = np.bincount(groups, weights=centred, minlength=levels)
    filled = counts > 0
    between = float((sums[filled] ** 2 / counts[filled]).sum())
    return float(np.sqrt(min(1.0, max(0.0, between / total))))


def pairwise_contingency(
    codes: list[np.ndarray], levels: list[int], chunk_rows: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair's contingency table at once: ``(counts, offsets)`` where the table of
    columns i and j is ``counts[offsets[i]:offsets[i+1], offsets[j]:offsets[j+1]]``.

    The tables are blocks of ``O' O`` with ``O`` the columns' level indicators (a missing
    value indicates no level, so each table counts its pairwise-complete rows), accumulated
    over row chunks. Chunks are multiplied in float32, exact for counts below 2**24, and
    summed in float64, exact for any table that fits in memory.

    >>> counts, offsets = pairwise_contingency([np.array([0, 1, 1]), np.array([1, 1, -1])],
    ...                                        [2, 2])
    >>> counts[offsets[0]:offsets[1], offsets[1]:offsets[2]].astype(int).tolist()
    [[0, 1], [0, 1]]
    """
    offsets = np.concatenate([[0], np.cumsum(levels)]).astype(np.intp)
    width = int(offsets[-1])
    n = len(codes[0]) if codes else 0
    counts = np.zeros((width, width))
    indicators = np.zeros((min(chunk_rows, max(n, 1)), width), dtype=np.float32)
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        block = indicators[: stop - start]
        block[:] = 0.0
        rows = np.arange(stop - start)
        for j, column in enumerate(codes):
            part = column[start:stop]
            present = part >= 0
            block[rows[present], offsets[j] + part[present]] = 1.0
        counts += (block.T @ block).astype(np.float64)
    return counts, offsets


def cramers_v_of_table(table: np.ndarray) -> float:
    """Cramér's V of a contingency table (empty rows and columns ignored); NaN when fewer
    than two rows or columns remain.

    >>> cramers_v_of_table(np.array([[5.0, 0.0], [0.0, 5.0]]))
    1.0
    """
    statistic, n, smaller = chi_square(table)
    if np.isnan(statistic):
        return float("nan")
    return float(min(1.0, np.sqrt(statistic / (n * (smaller - 1)))))
