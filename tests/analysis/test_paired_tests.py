import math

import numpy as np
import pytest
from scipy import optimize, stats
from sklearn.metrics import accuracy_score, roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar

from opsloop.analysis.paired_tests import (
    bootstrap_bounds,
    delong_covariance,
    delong_test,
    mcnemar_noninferiority_test,
    mcnemar_test,
    paired_bootstrap_test,
)


def _brute_force_delong(y, scores):
    """DeLong's placements by their definition: every positive against every negative."""
    y = np.asarray(y)
    pos, neg = scores[y == 1], scores[y == 0]
    # psi[i, j, k]: positive i against negative j under model k (1, one half on ties, 0)
    psi = (pos[:, None, :] > neg[None, :, :]) + 0.5 * (pos[:, None, :] == neg[None, :, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    aucs = psi.mean(axis=(0, 1))
    cov = np.cov(v10, rowvar=False) / len(pos) + np.cov(v01, rowvar=False) / len(neg)
    return aucs, cov


@pytest.fixture
def scored():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    # rounded scores: many ties, which the midranks must split in halves
    a = np.round(y * 0.8 + rng.normal(size=300), 1)
    b = np.round(y * 0.5 + rng.normal(size=300) + 0.3 * a, 1)
    c = rng.integers(0, 4, 300).astype(float)
    return y, np.column_stack([a, b, c])


def test_delong_aucs_equal_scikit_learns(scored):
    y, scores = scored
    aucs, _ = delong_covariance(y, scores)
    expected = [roc_auc_score(y, scores[:, k]) for k in range(3)]
    np.testing.assert_allclose(aucs, expected, rtol=0, atol=1e-12)


def test_delong_covariance_equals_the_quadratic_definition(scored):
    y, scores = scored
    aucs, cov = delong_covariance(y, scores)
    want_aucs, want_cov = _brute_force_delong(y, scores)
    np.testing.assert_allclose(aucs, want_aucs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, want_cov, rtol=0, atol=1e-14)


def test_delong_by_hand_on_four_rows():
    # placements of model a: positives 1 and 1/2, negatives 1/2 and 1: S10 = S01 = 1/8;
    # model b: positives 1 and 3/4 (a tie at 0.5), negatives 1 and 3/4: S10 = S01 = 1/32;
    # cov(S10) = 1/16, cov(S01) = -1/16, so var(a - b) = (1/8 + 1/32 - 1/8) / 2
    # + (1/8 + 1/32 + 1/8) / 2 = 5/32
    y = [1, 1, 0, 0]
    a, b = [0.8, 0.4, 0.6, 0.2], [0.7, 0.5, 0.3, 0.5]
    result = delong_test(y, a, b, margin=0.05, level=0.1)
    assert (result.candidate, result.baseline, result.difference) == (0.75, 0.875, -0.125)
    assert result.standard_error == pytest.approx(math.sqrt(5 / 32), abs=1e-15)
    z = (-0.125 + 0.05) / math.sqrt(5 / 32)
    assert result.statistic == pytest.approx(z, abs=1e-14)
    assert result.p_value == pytest.approx(stats.norm.sf(z), abs=1e-14)
    assert not result.non_inferior
    half = stats.norm.ppf(0.9) * math.sqrt(5 / 32)
    assert result.ci_low == pytest.approx(-0.125 - half, abs=1e-14)


def test_delong_decision_agrees_with_its_interval(scored):
    y, scores = scored
    for margin in (0.0, 0.02, 0.05, 0.1, 0.2):
        result = delong_test(y, scores[:, 1], scores[:, 0], margin=margin)
        assert result.non_inferior == (result.ci_low > -margin)


def test_delong_false_blocks_stay_at_the_level_when_the_models_are_equal():
    # Two equally good, independent scorers: at the null boundary (margin 0 and the same
    # AUC) the one-sided test rejects about `level` of the time.
    rng = np.random.default_rng(11)
    rejections = 0
    runs = 400
    for _ in range(runs):
        y = rng.integers(0, 2, 400)
        a = y + rng.normal(size=400)
        b = y + rng.normal(size=400)
        rejections += delong_test(y, a, b, margin=0.0, level=0.05).non_inferior
    # binomial(400, 0.05): mean 20, standard deviation 4.4
    assert 8 <= rejections <= 34


def test_delong_refuses_a_single_class():
    with pytest.raises(ValueError, match="at least two rows of each class"):
        delong_covariance([1, 1, 1, 0], [0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("exact", "correction"), [(True, True), (False, True), (False, False)])
def test_mcnemar_equals_statsmodels(seed, exact, correction):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    y = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < rng.uniform(0.05, 0.4), 1 - y, y)
    b = np.where(rng.random(n) < rng.uniform(0.05, 0.4), 1 - y, y)
    ours = mcnemar_test(y, a, b, exact=exact, correction=correction)
    right_a, right_b = a == y, b == y
    table = [
        [np.sum(right_a & right_b), np.sum(right_a & ~right_b)],
        [np.sum(~right_a & right_b), np.sum(~right_a & ~right_b)],
    ]
    theirs = mcnemar(table, exact=exact, correction=correction)
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-12)


def test_mcnemar_margin_zero_is_the_uncorrected_chi_square():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 500)
    a = np.where(rng.random(500) < 0.1, 1 - y, y)
    b = np.where(rng.random(500) < 0.2, 1 - y, y)
    result = mcnemar_noninferiority_test(y, a, b, margin=0.0)
    chi2 = mcnemar_test(y, a, b, exact=False, correction=False)
    assert result.statistic**2 == pytest.approx(chi2.statistic, abs=1e-12)
    assert result.statistic > 0  # the candidate (a) errs less
    assert result.p_value == pytest.approx(chi2.p_value / 2, abs=1e-12)


@pytest.mark.parametrize(("b", "c", "n", "margin"), [(8, 1, 10, 0.1), (30, 45, 400, 0.02)])
def test_tango_statistic_uses_the_constrained_maximum_likelihood(b, c, n, margin):
    # Reference: maximise the multinomial likelihood under p_b - p_c = -margin numerically.
    d0 = -margin
    rest = n - b - c

    def minus_log_likelihood(q):
        return -(b * math.log(q + d0) + c * math.log(q) + rest * math.log(1 - 2 * q - d0))

    q = optimize.minimize_scalar(
        minus_log_likelihood,
        bounds=(-d0 + 1e-12, (1 - d0) / 2 - 1e-12),
        method="bounded",
        options={"xatol": 1e-12},
    ).x
    z = (b - c - n * d0) / math.sqrt(n * (2 * q + d0 * (1 - d0)))
    y = np.ones(n, dtype=int)
    cand = np.r_[np.ones(b), np.zeros(c), np.ones(rest)]
    base = np.r_[np.zeros(b), np.ones(c), np.ones(rest)]
    result = mcnemar_noninferiority_test(y, cand, base, margin=margin)
    assert result.statistic == pytest.approx(z, abs=1e-6)
    assert result.difference == pytest.approx((b - c) / n, abs=1e-15)


def test_mcnemar_noninferiority_decision_agrees_with_its_interval():
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 800)
    a = np.where(rng.random(800) < 0.15, 1 - y, y)
    b = np.where(rng.random(800) < 0.13, 1 - y, y)
    for margin in np.linspace(0, 0.08, 17):
        result = mcnemar_noninferiority_test(y, a, b, margin=float(margin))
        assert result.non_inferior == (result.ci_low > -margin)
        assert result.ci_low < result.difference < result.ci_high


def test_paired_bootstrap_is_seeded_and_its_decision_agrees_with_its_bound():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 600)
    a = np.where(rng.random(600) < 0.12, 1 - y, y)
    b = np.where(rng.random(600) < 0.10, 1 - y, y)
    first = paired_bootstrap_test(y, a, b, accuracy_score, margin=0.03, n_boot=500, seed=4)
    again = paired_bootstrap_test(y, a, b, accuracy_score, margin=0.03, n_boot=500, seed=4)
    assert first == again
    assert first.candidate == accuracy_score(y, a) and first.baseline == accuracy_score(y, b)
    for margin in np.linspace(0, 0.06, 13):
        result = paired_bootstrap_test(
            y, a, b, accuracy_score, margin=float(margin), n_boot=500, seed=4
        )
        assert result.non_inferior == (result.ci_low > -margin)


def test_paired_bootstrap_decision_agrees_with_its_upper_bound_when_lower_is_better():
    rng = np.random.default_rng(8)
    y = rng.normal(size=400)
    a = y + rng.normal(scale=1.0, size=400)
    b = y + rng.normal(scale=0.95, size=400)
    mae = lambda t, p: float(np.mean(np.abs(t - p)))  # noqa: E731
    for margin in np.linspace(0, 0.15, 16):
        result = paired_bootstrap_test(
            y, a, b, mae, higher_is_better=False, margin=float(margin), n_boot=300, seed=1
        )
        assert result.non_inferior == (result.ci_high < margin)
        assert result.ci_low <= result.ci_high


def test_bootstrap_bounds_agree_with_the_p_value_on_ties():
    # Differences on a grid of 1/60 (an error rate of 60 rows): at the margin 5/60 exactly
    # 5% of them lie at or above it, so p = 0.05 is not below the level, and the upper bound
    # must not be below the margin either (the 95% quantile from below was 4/60).
    differences = np.random.default_rng(10).integers(-5, 6, 200) / 60
    for level in (0.05, 0.1):
        low, high = bootstrap_bounds(differences, level)
        for margin in np.unique(np.abs(differences)):
            assert (np.mean(differences >= margin) < level) == (high < margin)
            assert (np.mean(differences <= -margin) < level) == (low > -margin)


def test_paired_bootstrap_of_an_error_where_lower_is_better():
    y = np.arange(200.0)
    good, bad = y + 1.0, y + 3.0  # absolute errors 1 and 3 on every row
    mae = lambda t, p: float(np.mean(np.abs(t - p)))  # noqa: E731
    result = paired_bootstrap_test(y, bad, good, mae, higher_is_better=False, margin=1.0)
    assert (result.candidate, result.baseline, result.difference) == (3.0, 1.0, 2.0)
    # every resample differs by exactly 2, beyond the margin of 1
    assert (result.p_value, result.non_inferior) == (1.0, False)
    within = paired_bootstrap_test(y, bad, good, mae, higher_is_better=False, margin=2.5)
    assert (within.p_value, within.non_inferior) == (0.0, True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": -0.1}, "margin must be finite and >= 0"),
        ({"level": 0.5}, "level must lie strictly between 0 and 0.5"),
        ({"margin": "0.1"}, "margin must be a number"),
    ],
)
def test_bad_margin_or_level_is_named(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        mcnemar_noninferiority_test([1, 0], [1, 0], [1, 0], **kwargs)


def test_mcnemar_with_a_margin_passes_a_candidate_on_the_margin_at_the_level():
    # The candidate is exactly one margin worse (89.5% against 90.5% accurate, 10% of rows
    # discordant): the null hypothesis holds at its boundary, so it passes `level` of the time.
    n, runs, passes = 5_000, 400, 0
    y = np.ones(n, dtype=int)
    for seed in range(runs):
        cell = np.random.default_rng(seed).choice(4, size=n, p=(0.85, 0.045, 0.055, 0.05))
        candidate, baseline = np.isin(cell, (0, 1)).astype(int), np.isin(cell, (0, 2)).astype(int)
        passes += mcnemar_noninferiority_test(y, candidate, baseline, margin=0.01).non_inferior
    # binomial(400, 0.05): mean 20, standard deviation 4.4
    assert 8 <= passes <= 34
