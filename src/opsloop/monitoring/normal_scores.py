"""Normal scores of values against a sorted reference sample: the standard normal quantile of
each value's mid-rank among the reference's ``n`` values, ``(below + ties / 2 + 1/2) /
(n + 1)``.

What the per-feature detectors read (:mod:`.feature_stream`). Finding each value's place
among the reference's by binary search (``numpy.searchsorted``) cost as much as the detector
reading the scores; here a guide table splits the reference's range into ``2 n`` buckets of
equal width and holds where each starts among the sorted values, so a value's search starts
within its bucket's few values (a compiled loop), and the ``2 n + 1`` possible scores are
computed once per reference. The ranks are the binary search's exactly: a bucket that does
not hold a value's place (rounding at a bucket's edge) falls back to a search of the whole
sample.

>>> ranks = ReferenceRanks(np.array([0.0, 0.0, 1.0, 5.0]))
>>> ranks.normal_scores(np.array([0.0, 1.0, 100.0, -1.0])).round(3).tolist()
[-0.524, 0.253, 1.282, -1.282]
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.special import ndtri


@numba.njit(cache=True, error_model="numpy", inline="always")
def _first_at_least(reference, x, lo, hi):
    # The first index in [lo, hi) whose value is at least x (hi when none).
    while lo < hi:
        mid = (lo + hi) >> 1
        if reference[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, error_model="numpy")
def _rank_sums(reference, run_end, guide, low, scale, values, out):
    # below + upto per value: how many reference values lie below it, and at or below it.
    n = len(reference)
    buckets = len(guide) - 1
    for i in range(len(values)):
        x = values[i]
        if x < reference[0]:
            out[i] = 0
            continue
        if x > reference[n - 1]:
            out[i] = 2 * n
            continue
        b = int((x - low) * scale)
        b = min(max(b, 0), buckets - 1)
        lo = guide[b]
        hi = guide[b + 1]
        if (lo > 0 and reference[lo - 1] >= x) or (hi < n and reference[hi] < x):
            lo, hi = 0, n
        below = _first_at_least(reference, x, lo, hi)
        upto = run_end[below] if below < n and reference[below] == x else below
        out[i] = below + upto


class ReferenceRanks:
    """A feature's reference values (finite, sorted), ready to rank and score values.

    >>> ReferenceRanks(np.array([1.0, 2.0, 2.0, 3.0])).rank_sums(np.array([2.0, 2.5])).tolist()
    [4, 6]
    """

    def __init__(self, sorted_values: np.ndarray) -> None:
        values = np.ascontiguousarray(sorted_values, dtype=np.float64)
        if len(values) == 0 or not np.isfinite(values).all():
            raise ValueError("ReferenceRanks: the reference needs at least one finite value")
        if (np.diff(values) < 0).any():
            raise ValueError("ReferenceRanks: the reference values must be sorted")
        n = len(values)
        self.values = values
        # Past each value's run of equal values: ``upto`` for a value the reference holds.
        self._run_end = np.searchsorted(values, values, side="right").astype(np.int64)
        self._low = float(values[0])
        spread = float(values[-1]) - self._low
        buckets = 2 * n
        self._scale = buckets / spread if spread > 0 else 0.0
        edges = self._low + np.arange(buckets + 1) / self._scale if spread > 0 else [self._low]
        guide = np.searchsorted(values, edges, side="left").astype(np.int64)
        self._guide = guide if spread > 0 else np.array([0, n], dtype=np.int64)
        self._scores = ndtri((np.arange(2 * n + 1) + 1.0) / (2.0 * (n + 1)))

    def rank_sums(self, values: np.ndarray) -> np.ndarray:
        """``below + upto`` for each of ``values`` (no NaN): how many reference values lie
        below it plus how many lie at or below it, as ``numpy.searchsorted`` counts them."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        out = np.empty(len(values), dtype=np.int64)
        _rank_sums(self.values, self._run_end, self._guide, self._low, self._scale, values, out)
        return out

    def normal_scores(self, values: np.ndarray) -> np.ndarray:
        """The normal score of each of ``values`` (no NaN); see the module docstring."""
        return self._scores[self.rank_sums(values)]
