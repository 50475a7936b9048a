"""The fast Kolmogorov-Smirnov p-value against scipy: equal where it sums, identical elsewhere."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from opsloop.data.drift import compare, ks_test
from opsloop.data.drift.smirnov import _SMALL_STIRLING, _one_sided_sf, kstwo_sf


def _summed_grid():
    # (n, d) where scipy's kstwo.sf answers with 2 * smirnov(n, d): 2.2 <= n d^2 < 370
    # (up to 320 here: beyond it the p-values become subnormal numbers).
    for n in (141, 1_000, 9_999, 123_457, 500_000, 1_000_000):
        for d in np.linspace(math.sqrt(2.2 / n), min(math.sqrt(320 / n), 0.49), 9):
            yield n, float(d)


@pytest.mark.parametrize(("n", "d"), list(_summed_grid()))
def test_where_scipy_sums_the_series_the_fast_sum_agrees_to_1e_11(n, d):
    exact = stats.kstwo.sf(d, n)
    assert exact > 1e-290  # the grid stays clear of subnormal numbers
    assert kstwo_sf(d, n, method="fast") == pytest.approx(exact, rel=1e-11, abs=0)


@pytest.mark.parametrize("n", [2, 7, 30, 140, 1_012, 1_013, 5_000])
def test_the_one_sided_sum_is_scipys_smirnov(n):
    for d in (0.5 / n + 0.01, 0.1, 0.3, 0.6):
        if d >= 1:
            continue
        got = _one_sided_sf(n, d, _SMALL_STIRLING)
        assert got == pytest.approx(special.smirnov(n, d), rel=1e-11, abs=1e-300)


def test_by_hand_for_two_points():
    # n = 2: P(D+ >= d) = (1 - d)^2 + 2 d (1/2 + d)... summed by hand from Birnbaum-Tingey:
    # j = 0: C(2,0) d (d)^-1 (1-d)^2 = (1-d)^2; j = 1 (when d <= 1/2): C(2,1) d (d+1/2)^0
    # (1/2 - d)^1 = 2 d (1/2 - d).
    d = 0.3
    assert _one_sided_sf(2, d, _SMALL_STIRLING) == pytest.approx(
        (1 - d) ** 2 + 2 * d * (0.5 - d), rel=1e-14
    )


@pytest.mark.parametrize(
    ("n", "d"),
    [
        (100, 0.2),  # n <= 140: scipy's own small-n methods
        (500_000, 0.001),  # n d^2 < 2.2: the Pelz-Good expansion
        (500_000, 0.03),  # n d^2 >= 370: zero
        (1_000, 0.6),  # d >= 0.5
        (1_000, 0.0005),  # n d <= 1
        (1_000_001, (200 / 1_000_001) ** 0.5),  # scipy estimates the series above a million
        (10_000_000, (200 / 10_000_000) ** 0.5),
    ],
)
def test_outside_the_summed_branch_fast_is_scipy_bit_for_bit(n, d):
    assert kstwo_sf(d, n, method="fast") == float(np.clip(stats.kstwo.sf(d, n), 0, 1))


def test_a_fractional_sample_size_is_scipys_nan():
    assert math.isnan(stats.kstwo.sf(0.01, 123_456.5))
    assert math.isnan(kstwo_sf(0.01, 123_456.5, method="fast"))


def test_an_unknown_method_is_refused_by_name():
    with pytest.raises(ValueError, match="ks_p_value must be one of scipy, fast, got 'quick'"):
        kstwo_sf(0.1, 1_000, method="quick")
    frame = pd.DataFrame({"x": np.arange(10.0)})
    with pytest.raises(ValueError, match="ks_p_value must be one of scipy, fast"):
        compare(frame, frame, ks_p_value="quick")


def test_compare_with_fast_p_values_keeps_statistics_and_verdicts():
    rng = np.random.default_rng(4)
    n = 60_000
    reference = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(4)})
    current = pd.DataFrame(
        {f"x{i}": rng.normal(loc=0.02 * i, size=n) for i in range(4)}  # x0 unchanged
    )
    exact = compare(reference, current, plots=False)
    fast = compare(reference, current, plots=False, ks_p_value="fast")
    assert fast.to_dict()["dataset"]["ks_p_value"] == "fast"
    assert exact.to_dict()["dataset"]["ks_p_value"] == "scipy"
    summed = 0
    for a, b in zip(exact.columns, fast.columns, strict=True):
        assert (a.test, a.statistic, a.drifted) == (b.test, b.statistic, b.drifted)
        assert b.p_value == pytest.approx(a.p_value, rel=1e-11, abs=0)
        en = n / 2
        summed += 2.2 <= en * a.statistic**2 < 370
        reference_p = stats.ks_2samp(reference[a.column], current[a.column]).pvalue
        assert a.p_value == reference_p  # the default stays scipy's, bit for bit
    assert summed >= 2  # the fast branch was exercised
    d, p = ks_test(reference["x3"], current["x3"], ks_p_value="fast")
    assert (d, p) == (fast["x3"].statistic, fast["x3"].p_value)
