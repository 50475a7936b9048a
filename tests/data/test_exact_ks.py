"""The exact two-sided KS p-value equals scipy's, double for double, where ks_2samp uses it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from opsloop.data import drift
from opsloop.data.drift.exact_ks import exact_two_sided

_stats_py = pytest.importorskip("scipy.stats._stats_py")
scipy_exact = getattr(_stats_py, "_attempt_exact_2kssamp", None)
needs_scipy_routine = pytest.mark.skipif(
    scipy_exact is None, reason="this scipy has no _attempt_exact_2kssamp to compare with"
)

# Equal and unequal sizes up to ks_2samp's 10,000: a window against its reference, sizes
# with a large and a small gcd, coprime ones, one side of a single value, and the largest.
SIZES = [
    (5_000, 1_000),
    (1_000, 5_000),
    (4_000, 700),
    (999, 1_000),
    (3, 5),
    (1, 40),
    (40, 1),
    (12, 8),
    (10_000, 1),
    (2_500, 10_000),
    (10_000, 9_973),
    (7, 7),
    (100, 100),
    (1_000, 1_000),
    (10_000, 10_000),
]


def _statistics(n1: int, n2: int, seed: int) -> list[int]:
    """Lattice points h of the statistic h / lcm: the smallest, the largest, where the p-value
    is near 0.5, 0.05 and tiny, and random ones."""
    g = math.gcd(n1, n2)
    lcm = n1 // g * n2
    rng = np.random.default_rng(seed)
    # Large samples cost scipy seconds at large statistics (a wide band), so they get the
    # statistics where drift is judged and the extremes, small samples everything.
    fractions = (
        [0.005, 0.01, 0.02, 0.03, 0.05, 0.13]
        if min(n1, n2) >= 2_500
        else [
            0.01,
            0.03,
            0.1,
            0.2,
            0.5,
            0.9,
        ]
    )
    hs = {1, 2, 3, lcm - 1, lcm} | {max(1, round(f * lcm)) for f in fractions}
    if min(n1, n2) < 2_500:
        hs |= {int(h) for h in rng.integers(1, lcm + 1, 8)}
    return sorted(h for h in hs if 1 <= h <= lcm)


@needs_scipy_routine
@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_equals_scipys_exact_routine_double_for_double(n1, n2):
    g = math.gcd(n1, n2)
    lcm = n1 // g * n2
    for h in _statistics(n1, n2, n1 + n2):
        d = h / lcm
        expected = scipy_exact(n1, n2, g, d, "two-sided")
        assert exact_two_sided(n1, n2, d) == expected, (n1, n2, h)


@needs_scipy_routine
def test_statistic_off_the_lattice_rounds_as_scipy():
    # ks_2samp's statistic is a difference of two ECDFs: a double near, not on, h / lcm.
    for n1, n2 in [(5_000, 1_000), (700, 4_000), (333, 333)]:
        g = math.gcd(n1, n2)
        for d in (1 / n1 - 1 / n2, 0.0301, 0.07 + 1e-17, 0.5 * (1 / n1 + 1 / n2), 0.999999):
            d = abs(d)
            assert exact_two_sided(n1, n2, d) == scipy_exact(n1, n2, g, d, "two-sided")


@needs_scipy_routine
def test_gives_up_exactly_where_scipy_does():
    # On equal sizes at the smallest statistics scipy's sum rounds above 1 and it gives up
    # (then ks_2samp warns and goes asymptotic): the same sizes, the same verdict and number.
    given_up = 0
    for n in range(1, 400):
        for h in range(1, min(n, 4) + 1):
            expected = scipy_exact(n, n, n, h / n, "two-sided")
            assert exact_two_sided(n, n, h / n) == expected
            given_up += not expected[0]
    assert given_up > 100  # the grid does reach the cases where scipy gives up


def test_by_hand():
    # Samples of 3 and 3 that do not overlap (D = 1): 2 of the C(6, 3) = 20 orderings.
    found, d, p = exact_two_sided(3, 3, 1.0)
    assert (found, d) == (True, 1.0) and p == pytest.approx(2 / 20, rel=1e-15)
    # 1 value against 2 (D = 1): the single value first or last, 2 of the 3 orderings.
    found, d, p = exact_two_sided(1, 2, 1.0)
    assert (found, d) == (True, 1.0) and p == pytest.approx(2 / 3, rel=1e-15)
    # D = 0 means identical ECDFs everywhere: p = 1 without a sum.
    assert exact_two_sided(40, 60, 0.0) == (True, 0.0, 1.0)


def _samples():
    rng = np.random.default_rng(23)
    yield "window against reference", rng.normal(size=5_000), rng.normal(size=1_000)
    yield "shifted window", rng.normal(size=5_000), rng.normal(0.4, size=1_000)
    yield "far apart", rng.normal(size=3_000), rng.normal(6.0, size=2_000)
    yield "ties", np.round(rng.normal(size=4_000) * 2), np.round(rng.normal(0.1, size=700) * 2)
    yield "equal sizes", rng.normal(size=1_000), rng.normal(0.1, size=1_000)
    yield "largest", rng.normal(size=10_000), rng.normal(0.05, size=9_973)
    yield "one value", np.array([0.5]), rng.normal(size=40)
    same = rng.exponential(size=300)
    yield "identical", same, same.copy()


@pytest.mark.parametrize(("case", "reference", "current"), list(_samples()))
def test_ks_test_equals_ks_2samp_exact(case, reference, current):
    expected = stats.ks_2samp(reference, current, method="exact")
    assert drift.ks_test(reference, current) == (expected.statistic, expected.pvalue), case


def test_where_the_exact_sum_gives_up_ks_2samp_answers():
    # Interleaved samples of 5 and 5: D = 1/5, whose exact sum scipy rounds above 1.
    reference, current = np.arange(0.0, 10.0, 2.0), np.arange(1.0, 11.0, 2.0)
    assert not exact_two_sided(5, 5, 0.2)[0]
    with pytest.warns(RuntimeWarning, match="Exact calculation unsuccessful"):
        expected = stats.ks_2samp(reference, current, method="exact")
    with pytest.warns(RuntimeWarning, match="Exact calculation unsuccessful"):
        assert drift.ks_test(reference, current) == (expected.statistic, expected.pvalue)
