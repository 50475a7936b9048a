import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from opsloop.analysis.ab_test import (
    compare_mean_summaries,
    compare_means,
    compare_proportions,
    normal_power,
    required_sample_size,
    t_power,
)
from opsloop.errors import InvalidArgumentError


def _same_root(reference, effect, alpha, power, ratio, found):
    """``found`` solves statsmodels' own power equation to 1e-10; statsmodels' solver stops
    earlier (its t-test answers move in the 7th digit), so the two roots agree to 1e-6."""
    assert reference.power(effect, found, alpha, ratio) == pytest.approx(power, abs=1e-10)
    expected = reference.solve_power(effect_size=effect, alpha=alpha, power=power, ratio=ratio)
    assert found == pytest.approx(expected, rel=1e-6)


PROPORTION_CASES = [
    (120, 1000, 150, 1000, 0.05),
    (30, 200, 45, 210, 0.1),
    (0, 50, 3, 40, 0.05),  # an arm with no successes
    (980, 1000, 990, 1000, 0.01),  # rates near 1
    (7, 13, 2, 11, 0.2),
]


@pytest.mark.parametrize(("k_a", "n_a", "k_b", "n_b", "alpha"), PROPORTION_CASES)
def test_proportions_match_statsmodels(k_a, n_a, k_b, n_b, alpha):
    r = compare_proportions(k_a, n_a, k_b, n_b, alpha=alpha, power=0.8)
    z, p = proportions_ztest([k_b, k_a], [n_b, n_a])
    low, high = confint_proportions_2indep(k_b, n_b, k_a, n_a, method="newcomb", alpha=alpha)
    assert r.difference == pytest.approx(k_b / n_b - k_a / n_a, abs=1e-15)
    assert r.statistic == pytest.approx(z, abs=1e-9)
    assert r.p_value == pytest.approx(p, abs=1e-9)
    assert r.ci_low == pytest.approx(low, abs=1e-9)
    assert r.ci_high == pytest.approx(high, abs=1e-9)
    h = proportion_effectsize(k_b / n_b, k_a / n_a)
    assert r.effect_size == pytest.approx(h, abs=1e-12)
    _same_root(NormalIndPower(), abs(h), alpha, 0.8, 1.0, r.required_per_arm_exact)


def test_proportions_by_hand():
    # p_a = 0.12, p_b = 0.15, pooled 0.135: z = 0.03 / sqrt(0.135 * 0.865 * 0.002).
    r = compare_proportions(120, 1000, 150, 1000)
    z = 0.03 / math.sqrt(0.135 * 0.865 * 0.002)
    assert r.statistic == pytest.approx(z, abs=1e-12)
    assert r.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), abs=1e-12)


MEAN_CASES = [
    (np.arange(1.0, 5.0), np.arange(2.0, 9.0, 2.0), 0.05),
    ("normal", 0.05),
    ("skewed", 0.01),
]


def _samples(case):
    rng = np.random.default_rng(4)
    if case == "normal":
        return rng.normal(10, 2, 50), rng.normal(11, 3, 60)
    return rng.lognormal(3, 1, 200), rng.lognormal(3.2, 1, 150)


@pytest.mark.parametrize("case", MEAN_CASES)
def test_means_match_statsmodels(case):
    if len(case) == 3:
        a, b, alpha = case
    else:
        (a, b), alpha = _samples(case[0]), case[1]
    r = compare_means(a, b, alpha=alpha, power=0.9)
    t, p, _df = ttest_ind(b, a, usevar="unequal")
    low, high = CompareMeans(DescrStatsW(b), DescrStatsW(a)).tconfint_diff(
        alpha=alpha, usevar="unequal"
    )
    assert r.statistic == pytest.approx(t, abs=1e-9)
    assert r.p_value == pytest.approx(p, abs=1e-9)
    assert r.ci_low == pytest.approx(low, abs=1e-9)
    assert r.ci_high == pytest.approx(high, abs=1e-9)
    pooled = math.sqrt(
        ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
    )
    d = (b.mean() - a.mean()) / pooled
    assert r.effect_size == pytest.approx(d, abs=1e-12)
    _same_root(TTestIndPower(), abs(d), alpha, 0.9, 1.0, r.required_per_arm_exact)


@pytest.mark.parametrize("ratio", [1.0, 0.25, 3.0])
@pytest.mark.parametrize("effect", [0.05, 0.3, 1.2])
def test_power_and_sample_size_match_statsmodels_with_unequal_arms(effect, ratio):
    z_power, t_power_ = NormalIndPower(), TTestIndPower()
    assert normal_power(effect, 80.0, 0.05, ratio) == pytest.approx(
        z_power.power(effect, 80.0, 0.05, ratio), abs=1e-12
    )
    expected = t_power_.power(effect, 80.0, 0.05, ratio)
    if math.isnan(expected):
        # scipy's nctdtr gives nan for statsmodels' far lower tail; the upper tail is the power.
        df, nc = 80.0 * (1 + ratio) - 2, effect * math.sqrt(80.0 * ratio / (1 + ratio))
        expected = stats.nct.sf(stats.t.isf(0.025, df), df, nc)
    assert t_power(effect, 80.0, 0.05, ratio) == pytest.approx(expected, abs=1e-12)
    for t, reference in ((False, z_power), (True, t_power_)):
        found = required_sample_size(effect, 0.05, 0.8, ratio, t=t)
        _same_root(reference, effect, 0.05, 0.8, ratio, found)


def test_summaries_equal_raw_values_and_serialise():
    a, b = _samples("normal")
    raw = compare_means(a, b)
    summary = compare_mean_summaries(
        a.size, a.mean(), a.var(ddof=1), b.size, b.mean(), b.var(ddof=1)
    )
    assert raw == summary
    assert json.loads(json.dumps(raw.to_dict()))["required_per_arm"] == raw.required_per_arm


def test_equal_arms_need_infinitely_many():
    r = compare_proportions(10, 100, 10, 100)
    assert (r.difference, r.required_per_arm) == (0.0, math.inf)
    assert r.p_value == pytest.approx(1.0, abs=1e-12)


def test_errors_name_the_field():
    with pytest.raises(InvalidArgumentError, match="successes_b must be at most n_b"):
        compare_proportions(1, 10, 11, 10)
    with pytest.raises(InvalidArgumentError, match="n_a must be an integer >= 1"):
        compare_proportions(0, 0, 1, 10)
    with pytest.raises(InvalidArgumentError, match="power must lie strictly between 0 and 1"):
        compare_proportions(1, 10, 2, 10, power=1.0)
    with pytest.raises(InvalidArgumentError, match=r"values_b\[1\] = nan is not finite"):
        compare_means([1.0, 2.0], [1.0, float("nan")])
    with pytest.raises(InvalidArgumentError, match="var_a must be a finite number"):
        compare_mean_summaries(5, 1.0, -1.0, 5, 1.0, 1.0)
