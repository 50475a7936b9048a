"""Whether a move of the inputs explains a window's error (the reference's errors weighted by
the density ratio, a one-sided Welch t-test with Kish's effective sample size): the
statistic against scipy and against numbers derived by hand; planted covariate shifts
that raise the error without a concept change (scikit-learn's make_classification and
breast cancer data) are explained at about the nominal rate, and concept changes are not."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from opsloop.data.training_reference import build_reference
from opsloop.monitoring.decay_kind import ErrorHistory, decay_kind
from opsloop.monitoring.reweighted_reference import encoded_inputs, reweighted_reference
from opsloop.monitoring.shift_explained import MIN_EFFECTIVE_ROWS, shift_test

ALPHA = 0.05


def test_with_equal_weights_it_is_welchs_t_test():
    rng = np.random.default_rng(0)
    reference = (rng.random(400) < 0.2).astype(float)
    window = (rng.random(120) < 0.27).astype(float)
    found = shift_test(window, reference, np.ones(400), alpha=ALPHA)
    expected = stats.ttest_ind(window, reference, equal_var=False, alternative="greater")
    assert found["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert found["p_value"] == pytest.approx(expected.pvalue, rel=1e-10)
    assert found["df"] == pytest.approx(expected.df, rel=1e-12)
    assert found["effective_rows"] == pytest.approx(400.0, rel=1e-12)
    assert found["explained"] == (expected.pvalue >= ALPHA)
    # Absolute errors (a regression) go through the same test.
    errors = np.abs(rng.normal(size=300))
    shifted = np.abs(rng.normal(0.2, 1, size=80))
    found = shift_test(shifted, errors, np.full(300, 2.0), alpha=ALPHA)
    expected = stats.ttest_ind(shifted, errors, equal_var=False, alternative="greater")
    assert found["p_value"] == pytest.approx(expected.pvalue, rel=1e-10)


def test_the_weighted_statistic_by_hand():
    # Reference errors 0, 0, 1, 1 weighted 1, 1, 3, 3; the window errs on 4 of 5 rows.
    found = shift_test(
        np.array([1.0, 1.0, 1.0, 0.0, 1.0]),
        np.array([0.0, 0.0, 1.0, 1.0]),
        np.array([1.0, 1.0, 3.0, 3.0]),
        alpha=ALPHA,
        min_effective_rows=2,
    )
    # expected = (3 + 3) / 8; ESS = 8^2 / (1 + 1 + 9 + 9) = 3.2
    assert found["expected_error"] == 0.75
    assert found["effective_rows"] == pytest.approx(3.2, rel=1e-15)
    # se_ref^2 = 3.2/2.2 * (2 * 1 * 0.75^2 + 2 * 9 * 0.25^2) / 64 = 16/11 * 2.25/64 = 0.5625/11
    var_ref = 0.5625 / 11
    # s^2 = (4 * 0.2^2 + 0.8^2) / 4 = 0.2, over n = 5 rows
    var_win = 0.2 / 5
    t = (0.8 - 0.75) / math.sqrt(var_ref + var_win)
    df = (var_ref + var_win) ** 2 / (var_ref**2 / 2.2 + var_win**2 / 4)
    assert found["statistic"] == pytest.approx(t, rel=1e-12)
    assert found["df"] == pytest.approx(df, rel=1e-12)
    assert found["p_value"] == pytest.approx(stats.t.sf(t, df), rel=1e-12)
    assert found["explained"] is True


def test_too_few_effective_rows_cannot_tell():
    weights = np.r_[np.full(190, 0.01), np.full(10, 20.0)]  # ESS about 10.2
    found = shift_test(np.ones(50), np.zeros(200), weights, alpha=ALPHA)
    assert found["effective_rows"] < MIN_EFFECTIVE_ROWS
    assert found["explained"] is None and found["p_value"] is None
    assert "fewer than the 100 the test needs" in found["note"]
    history = ErrorHistory(mean=0.0, width=500, variance=0.0)
    moved = decay_kind(
        0.9,
        "accuracy",
        np.ones(50),
        history,
        reweighted=_Reweighted(np.zeros(200), weights),
    )
    assert moved["kind"] == "data_drift_and_error_rise"


class _Reweighted:
    """What :func:`decay_kind` reads of a reweighted reference."""

    def __init__(self, errors, weights):
        self.errors, self.weights, self.columns, self.density_ratio = errors, weights, (), None
        self.note, self.predictions = None, None


def test_numbers_and_categories_are_encoded_alike_on_both_sides():
    frame = pd.DataFrame({"x": [1.0, 2.0, 4.0, None], "c": ["a", "b", "a", "a"]})
    reference = build_reference(frame)
    window = pd.DataFrame({"x": [3.0, "bad"], "c": ["b", None]})
    left, right, names = encoded_inputs(reference, frame, window)
    assert names == ("x", "x missing", "c=a", "c=b", "c other")
    # The reference's median of x is 2; its missing value and the window's text take it.
    assert left.tolist() == [
        [1.0, 0.0, 1.0, 0.0, 0.0],
        [2.0, 0.0, 0.0, 1.0, 0.0],
        [4.0, 0.0, 1.0, 0.0, 0.0],
        [2.0, 1.0, 1.0, 0.0, 0.0],
    ]
    assert right.tolist() == [[3.0, 0.0, 0.0, 1.0, 0.0], [2.0, 1.0, 0.0, 0.0, 1.0]]


# --- planted shifts on data nobody here wrote -------------------------------------------


def _classification(seed: int):
    """make_classification rows, a logistic regression trained on the first 3,000, a
    held-out reference of 3,000 and a pool to draw windows from; the model's errors on the
    reference and the direction in which it errs more (a logistic regression of its errors
    on the inputs, fitted on rows of the pool set aside)."""
    x, y = make_classification(
        n_samples=30_000,
        n_features=4,
        n_informative=4,
        n_redundant=0,
        n_clusters_per_class=2,
        flip_y=0.05,
        class_sep=1.0,
        random_state=seed,
    )
    model = LogisticRegression(max_iter=1000).fit(x[:3000], y[:3000])
    wrong = model.predict(x[6000:9000]) != y[6000:9000]
    errs = LogisticRegression(max_iter=1000).fit(x[6000:9000], wrong)
    return x, y, model, errs


def _tilted(rng, scores: np.ndarray, n: int, strength: float) -> np.ndarray:
    """``n`` positions drawn without replacement with probability proportional to
    ``exp(strength * score)``: an exponential tilt of the pool, a shift of p(x) alone."""
    weights = np.exp(strength * (scores - scores.max()))
    return rng.choice(len(scores), n, replace=False, p=weights / weights.sum())


def _judged(frame_ref, predictions, labels, window, window_errors):
    reference = build_reference(frame_ref, predictions=predictions, labels=labels)
    reweighted = reweighted_reference(reference, window, "accuracy")
    return shift_test(window_errors, reweighted.errors, reweighted.weights, alpha=ALPHA)


REPEATS = 100


@pytest.mark.slow
def test_a_covariate_shift_alone_is_explained_at_about_the_nominal_rate():
    """Over seeded repeats, a tilt of the inputs towards where the model errs raises the
    error well above the reference's; the test says the relationship moved in about alpha
    of them (at most the binomial 99.9% bound of alpha over the repeats)."""
    not_explained, rises = 0, []
    for seed in range(REPEATS):
        x, y, model, errs = _classification(seed)
        rng = np.random.default_rng(seed)
        pool = np.arange(9000, 30_000)
        chosen = pool[_tilted(rng, errs.decision_function(x[pool]), 500, 1.0)]
        columns = [f"f{i}" for i in range(x.shape[1])]
        ref_rows = pd.DataFrame(x[3000:6000], columns=columns)
        window = pd.DataFrame(x[chosen], columns=columns)
        errors = (model.predict(x[chosen]) != y[chosen]).astype(float)
        found = _judged(ref_rows, model.predict(x[3000:6000]), y[3000:6000], window, errors)
        rises.append(found["window_error"] - found["reference_error"])
        not_explained += found["explained"] is False
    assert np.mean(rises) > 0.05  # the shift alone raises the error by 5 points or more
    bound = stats.binom.ppf(0.999, REPEATS, ALPHA)
    assert not_explained <= bound, (not_explained, bound)


def test_a_concept_change_with_the_covariate_shift_is_not_explained():
    not_explained = 0
    for seed in range(20):
        x, y, model, errs = _classification(seed)
        rng = np.random.default_rng(seed)
        pool = np.arange(9000, 30_000)
        chosen = pool[_tilted(rng, errs.decision_function(x[pool]), 500, 1.0)]
        labels = y[chosen].copy()
        # A new relationship: where the first input is above its median, the label is the
        # opposite of the model's answer (a flip of the old labels there could lower the
        # error, where the tilt put rows the model gets wrong more often than not).
        upper = x[chosen, 0] > np.median(x[chosen, 0])
        labels[upper] = 1 - model.predict(x[chosen][upper])
        columns = [f"f{i}" for i in range(x.shape[1])]
        errors = (model.predict(x[chosen]) != labels).astype(float)
        found = _judged(
            pd.DataFrame(x[3000:6000], columns=columns),
            model.predict(x[3000:6000]),
            y[3000:6000],
            pd.DataFrame(x[chosen], columns=columns),
            errors,
        )
        not_explained += found["explained"] is False
    assert not_explained == 20


CANCER_INPUTS = ["mean radius", "mean texture", "mean smoothness", "worst area", "mean concavity"]


def test_breast_cancer_shifted_towards_the_uncertain_cases():
    """Breast cancer rows on five inputs, over six seeded splits: a model on two of them,
    250 held-out rows as the reference and a window of 100 drawn from the rest with more of
    the rows where the model errs (an exponential tilt on the inputs; the labels are the
    data's own): the rise is explained. The same window with its labels flipped where the
    worst area is above its median (a new relationship) is not."""
    data = load_breast_cancer(as_frame=True)
    frame, target = data.data[CANCER_INPUTS], data.target.to_numpy()
    inputs = ["mean texture", "mean smoothness"]
    rises = []
    for seed in range(6):
        order = np.random.default_rng(seed).permutation(len(frame))
        train, ref, pool = order[:150], order[150:400], order[400:]
        model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
            frame.iloc[train][inputs], target[train]
        )
        ref_rows = frame.iloc[ref].reset_index(drop=True)
        ref_predictions = model.predict(ref_rows[inputs])
        wrong = ref_predictions != target[ref]
        errs = make_pipeline(StandardScaler(), LogisticRegression()).fit(ref_rows, wrong)
        rng = np.random.default_rng(3)
        chosen = pool[_tilted(rng, errs.decision_function(frame.iloc[pool]), 100, 2.0)]
        window = frame.iloc[chosen].reset_index(drop=True)
        predicted = model.predict(window[inputs])
        errors = (predicted != target[chosen]).astype(float)
        found = _judged(ref_rows, ref_predictions, target[ref], window, errors)
        rises.append(found["window_error"] - found["reference_error"])
        assert found["explained"] is True, (seed, found)
        flipped = target[chosen].copy()
        large = window["worst area"].to_numpy() > np.median(frame["worst area"])
        flipped[large] = 1 - flipped[large]
        found = _judged(ref_rows, ref_predictions, target[ref], window, predicted != flipped)
        assert found["explained"] is False, (seed, found)
    assert np.mean(rises) > 0.05
