"""Two-sample tests on numeric columns: Kolmogorov-Smirnov, Wasserstein, Anderson-Darling.

Everything starts from a :class:`SortedSample`: the column's finite values sorted once, with
the missing and non-finite counts kept aside. A reference sample sorted once can be compared
with any number of current samples, which is what a cached reference profile is.

* :func:`ks_test` returns scipy's ``ks_2samp`` statistic and p-value bit for bit. The
  statistic comes from one merge pass over the two sorted samples
  (:func:`opsloop.data.drift.kernels.ecdf_walk`), with the floating-point expressions scipy
  uses. For samples of at most 10,000 values the p-value is scipy's exact distribution,
  computed by :mod:`opsloop.data.drift.exact_ks` (the same doubles as the routine
  ``ks_2samp`` calls, many times faster; ``ks_2samp`` itself where that routine gives up),
  without ``ks_2samp``'s sorting again and searching the pooled values; above 10,000
  the p-value comes from scipy's ``kstwo`` distribution with scipy's effective sample
  size, as ``ks_2samp(method="auto")`` does (``ks_p_value="fast"``: the same to 1e-11
  relative, in a twentieth of the time where scipy sums the Smirnov series;
  :mod:`opsloop.data.drift.smirnov`).
* :func:`wasserstein` is scipy's ``wasserstein_distance`` from the same merge pass (equal to
  rounding), optionally divided by the reference's standard deviation.
* :func:`anderson_darling` delegates to ``scipy.stats.anderson_ksamp``; its p-value is
  interpolated from a table and clipped to [0.001, 0.25], which the result says.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = SortedSample.from_values(rng.normal(size=20_000))
>>> cur = SortedSample.from_values(rng.normal(0.5, size=20_000))
>>> stat, p = ks_test(ref, cur)
>>> round(stat, 3), p < 1e-12
(0.196, True)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from opsloop.data.drift.exact_ks import exact_two_sided
from opsloop.data.drift.kernels import ecdf_walk, sort_floats
from opsloop.data.drift.smirnov import kstwo_sf

#: scipy's ks_2samp switches from the exact distribution to the asymptotic one above this size.
EXACT_KS_MAX_N = 10_000


@dataclass(frozen=True, eq=False)
class SortedSample:
    """A numeric sample's finite values, sorted, plus what was set aside.

    >>> import numpy as np
    >>> s = SortedSample.from_values(np.array([3.0, np.nan, 1.0, np.inf]))
    >>> s.values.tolist(), s.n_missing, s.n_nonfinite
    ([1.0, 3.0], 1, 1)
    """

    values: np.ndarray
    n_missing: int = 0
    n_nonfinite: int = 0

    @classmethod
    def from_values(cls, values) -> SortedSample:
        """Sort the finite values of an array-like (NaN counts as missing, ±inf as non-finite)."""
        array = np.asarray(values, dtype=np.float64).ravel()
        nan = np.isnan(array)
        n_missing = int(nan.sum())
        if n_missing:
            array = array[~nan]
        inf = np.isinf(array)
        n_nonfinite = int(inf.sum())
        if n_nonfinite:
            array = array[~inf]
        return cls(sort_floats(array), n_missing, n_nonfinite)

    @property
    def n(self) -> int:
        """Number of finite values."""
        return int(self.values.size)

    def std(self) -> float:
        """Population standard deviation (``ddof=0``) of the finite values."""
        return float(np.std(self.values)) if self.n else float("nan")


def _as_sample(values) -> SortedSample:
    return values if isinstance(values, SortedSample) else SortedSample.from_values(values)


def _require(sample: SortedSample, name: str) -> None:
    if sample.n == 0:
        raise ValueError(f"{name} has no finite values to compare")


def ks_test(reference, current, *, ks_p_value: str = "scipy") -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov test: ``(statistic, p_value)``.

    Equal to ``scipy.stats.ks_2samp(reference, current)`` on the finite values;
    ``ks_p_value="fast"`` computes the large-sample p-value faster, to 1e-11 relative of
    scipy's (:mod:`opsloop.data.drift.smirnov`).

    >>> import numpy as np
    >>> ks_test(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    (0.0, 1.0)
    """
    ref, cur = _as_sample(reference), _as_sample(current)
    _require(ref, "reference")
    _require(cur, "current")
    max_diff, _, min_diff, _, _ = ecdf_walk(ref.values, cur.values)
    if max(ref.n, cur.n) <= EXACT_KS_MAX_N:
        return _exact_ks(ref, cur, max_diff, min_diff)
    return _large_sample_ks(max_diff, min_diff, ref.n, cur.n, ks_p_value)


def _exact_ks(ref: SortedSample, cur: SortedSample, max_diff, min_diff) -> tuple[float, float]:
    """``ks_2samp(ref, cur)``'s statistic and p-value below 10,000 values a side, from the
    extremes of ``F_ref - F_cur`` (:func:`ecdf_walk`)."""
    d = max(min(max(-min_diff, 0.0), 1.0), max_diff)
    found, d, p = exact_two_sided(ref.n, cur.n, d)
    if found:
        # ks_2samp returns the statistic as the exact distribution rounds it (h / lcm).
        return float(d), float(np.clip(p, 0, 1))
    # The exact sum is not a probability (rounding, on equal sizes at the smallest
    # statistics): ks_2samp then warns and goes asymptotic, so it is asked itself.
    result = stats.ks_2samp(ref.values, cur.values)
    return float(result.statistic), float(result.pvalue)


def _large_sample_ks(max_diff, min_diff, n1: int, n2: int, method: str) -> tuple[float, float]:
    # ks_2samp(method="auto") above 10,000 values: kstwo's sf at the effective sample size.
    d = max(min(max(-min_diff, 0.0), 1.0), max_diff)
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(d), kstwo_sf(d, np.round(m * n / (m + n)), method=method)


def wasserstein(reference, current, *, normalize: bool = False) -> float:
    """Wasserstein-1 distance (scipy's ``wasserstein_distance``); ``normalize`` divides it
    by the reference's standard deviation so that 0.1 means a tenth of a standard deviation.

    >>> import numpy as np
    >>> wasserstein(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    1.0
    """
    ref, cur = _as_sample(reference), _as_sample(current)
    _require(ref, "reference")
    _require(cur, "current")
    distance = ecdf_walk(ref.values, cur.values)[4]
    if not normalize:
        return distance
    scale = ref.std()
    if scale == 0.0:
        return 0.0 if distance == 0.0 else float("inf")
    return distance / scale


def ks_and_wasserstein(
    reference: SortedSample, current: SortedSample, *, ks_p_value: str = "scipy"
) -> tuple:
    """KS ``(statistic, p_value)`` and the raw Wasserstein distance from one merge pass.

    >>> import numpy as np
    >>> a = SortedSample.from_values(np.arange(20_000.0))
    >>> b = SortedSample.from_values(np.arange(20_000.0) + 100)
    >>> d, p, w = ks_and_wasserstein(a, b)
    >>> round(d, 3), w
    (0.005, 100.0)
    """
    _require(reference, "reference")
    _require(current, "current")
    max_diff, _, min_diff, _, area = ecdf_walk(reference.values, current.values)
    if max(reference.n, current.n) <= EXACT_KS_MAX_N:
        d, p = _exact_ks(reference, current, max_diff, min_diff)
    else:
        d, p = _large_sample_ks(max_diff, min_diff, reference.n, current.n, ks_p_value)
    return d, p, area


def anderson_darling(reference, current) -> tuple[float, float]:
    """k-sample Anderson-Darling test (scipy's ``anderson_ksamp``): ``(statistic, p_value)``.

    scipy interpolates the p-value from a table and clips it to [0.001, 0.25].

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> stat, p = anderson_darling(rng.normal(size=500), rng.normal(1.0, size=500))
    >>> p
    0.001
    """
    ref, cur = _as_sample(reference), _as_sample(current)
    _require(ref, "reference")
    _require(cur, "current")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy warns whenever it clips p
        result = stats.anderson_ksamp([ref.values, cur.values])
    return float(result.statistic), float(result.pvalue)
