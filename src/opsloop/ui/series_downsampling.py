"""Shrink a metric series for a chart: the lowest and highest point of each x bucket.

A chart is a few hundred pixels wide, so a million points cannot all be seen; averaging
them would hide the spike a person is looking for. Instead the x range is cut into
``buckets`` equal intervals (one per pixel column, roughly) and each keeps its minimum
and maximum points, in step order. The drawn line then touches every extreme the full
series reaches, at most ``2 * buckets`` points are sent, and the cost is one sort.
"""

from __future__ import annotations

import numpy as np


def min_max_downsample(
    steps: np.ndarray, values: np.ndarray, buckets: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """The points of ``(steps, values)`` that are a minimum or maximum of their x bucket.

    ``steps`` are the x values (sorted or not); the range from the smallest to the largest
    is cut into ``buckets`` equal intervals. Points whose value is NaN are dropped (a chart
    cannot draw them). A series of at most ``2 * buckets`` points comes back whole, sorted by
    step. Among equal values, the minimum is the earliest point and the maximum the latest.

    >>> steps = np.arange(10)
    >>> values = np.array([0., 1., 9., 2., 3., -5., 4., 5., 6., 7.])
    >>> x, y = min_max_downsample(steps, values, buckets=2)
    >>> x.tolist(), y.tolist()
    ([0, 2, 5, 9], [0.0, 9.0, -5.0, 7.0])
    """
    if isinstance(buckets, bool) or not isinstance(buckets, int | np.integer) or buckets < 1:
        raise ValueError(f"buckets must be a positive integer, got {buckets!r}")
    steps = np.asarray(steps)
    values = np.asarray(values, dtype=np.float64)
    if steps.shape != values.shape or steps.ndim != 1:
        raise ValueError(
            f"steps and values must be 1-d arrays of one length, got shapes "
            f"{steps.shape} and {values.shape}"
        )
    keep = ~np.isnan(values)
    steps, values = steps[keep], values[keep]
    # A stable sort keeps the logged order of points sharing a step.
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    if len(steps) <= 2 * buckets:
        return steps, values
    low, high = float(steps[0]), float(steps[-1])
    span = high - low
    if span == 0:  # every point at one step: a single bucket
        position = np.zeros(len(steps))
    else:
        position = (steps.astype(np.float64) - low) / span * buckets
    bucket = np.minimum(position.astype(np.int64), buckets - 1)
    # Within each bucket, by value (ties in step order): the first is the minimum, the last
    # the maximum.
    by_value = np.lexsort((np.arange(len(values)), values, bucket))
    ends = np.flatnonzero(np.diff(bucket[by_value], append=buckets)) + 1
    starts = np.concatenate(([0], ends[:-1]))
    chosen = np.union1d(by_value[starts], by_value[ends - 1])
    return steps[chosen], values[chosen]


def min_max_downsample_runs(
    starts: np.ndarray, steps: np.ndarray, values: np.ndarray, buckets: int
) -> np.ndarray:
    """What :func:`min_max_downsample` keeps of each of many series at once, for a chart of
    a thousand runs: the positions of the kept points, in order.

    The series lie one after another in ``steps`` and ``values``, series ``i`` from
    ``starts[i]`` up to the next start, each already in step order (points sharing a step in
    logged order). Each series gives exactly the points ``min_max_downsample`` returns for
    it alone with ``buckets``, found with a few sorts of all the points instead of a call
    per series.

    >>> steps = np.array([0, 1, 2, 3, 4, 5, 0, 1])
    >>> values = np.array([5., 1., 2., 9., 3., 4., 7., np.nan])
    >>> kept = min_max_downsample_runs(np.array([0, 6]), steps, values, buckets=2)
    >>> kept.tolist(), min_max_downsample(steps[:6], values[:6], 2)[0].tolist()
    ([0, 1, 3, 4, 6], [0, 1, 3, 4])
    """
    if isinstance(buckets, bool) or not isinstance(buckets, int | np.integer) or buckets < 1:
        raise ValueError(f"buckets must be a positive integer, got {buckets!r}")
    count = len(steps)
    series = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, count)))
    keep = np.flatnonzero(~np.isnan(values))
    series, steps, values = series[keep], steps[keep], values[keep]
    if not len(keep):
        return keep
    # Each series' first and last kept point, and how many it kept.
    first = np.flatnonzero(np.diff(series, prepend=-1))
    last = np.append(first[1:], len(series)) - 1
    sizes = last - first + 1
    low = steps[first].astype(np.float64)
    span = steps[last].astype(np.float64) - low
    short = (sizes <= 2 * buckets)[np.repeat(np.arange(len(first)), sizes)]
    # The same arithmetic as min_max_downsample's, so every point lands in the same bucket.
    own = np.repeat(np.arange(len(first)), sizes)
    with np.errstate(divide="ignore", invalid="ignore"):
        position = (steps.astype(np.float64) - low[own]) / span[own] * buckets
    position[(span == 0)[own]] = 0.0
    bucket = np.minimum(position.astype(np.int64), buckets - 1)
    # By series, bucket, value, then position: each bucket's minimum first, maximum last.
    index = np.arange(len(values))
    by_value = np.lexsort((index, values, bucket, own))
    group = own[by_value] * buckets + bucket[by_value]
    ends = np.flatnonzero(np.diff(group, append=-1)) + 1
    begins = np.concatenate(([0], ends[:-1]))
    chosen = np.union1d(by_value[begins], by_value[ends - 1])
    chosen = np.union1d(chosen, index[short])
    return keep[chosen]
