import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from opsloop.analysis.density_ratio import estimate_density_ratio
from opsloop.analysis.performance_estimation import (
    PerformanceEstimator,
    estimate_performance,
    expected_confusion,
)


def test_binary_estimate_equals_the_hand_derived_confusion_and_metrics():
    # predictions 1, 1, 0, 0; a row predicted 1 is right with p, one predicted 0 with 1 - p
    est = estimate_performance([0.9, 0.6, 0.4, 0.2])
    c = est.confusion
    assert (c.tp, c.fp, c.tn, c.fn) == pytest.approx((1.5, 0.5, 1.4, 0.6))
    assert est["accuracy"].value == pytest.approx(2.9 / 4)
    assert est["precision"].value == pytest.approx(1.5 / 2.0)
    assert est["recall"].value == pytest.approx(1.5 / 2.1)
    assert est["f1"].value == pytest.approx(3.0 / 4.1)
    # concordant pairs p_i (1 - p_j) over the six ordered pairs, plus half of each row with
    # itself (the trapezoid of its own step), over sum(p) * sum(1 - p) = 2.1 * 1.9
    pairs = 0.36 + 0.54 + 0.72 + 0.36 + 0.48 + 0.32
    itself = 0.5 * (0.09 + 0.24 + 0.24 + 0.16)
    assert est["roc_auc"].value == pytest.approx((pairs + itself) / (2.1 * 1.9))
    # Poisson-binomial: the right-prediction probabilities are 0.9, 0.6, 0.6, 0.8
    assert est["accuracy"].standard_error == pytest.approx(np.sqrt(0.73) / 4)


def test_expected_confusion_follows_the_threshold():
    c = expected_confusion([0.9, 0.6, 0.3, 0.2], threshold=0.7)
    assert (c.tp, c.fp, c.tn, c.fn) == pytest.approx((0.9, 0.1, 1.9, 1.1))


def test_multiclass_estimate_equals_the_hand_derived_values():
    prob = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]
    est = estimate_performance(prob)
    assert est["accuracy"].value == pytest.approx((0.7 + 0.8 + 0.6) / 3)
    # each class predicted once; its expected true count is its column's sum
    f1 = [2 * 0.7 / (1 + 1.0), 2 * 0.8 / (1 + 1.2), 2 * 0.6 / (1 + 0.8)]
    assert est["macro_f1"].value == pytest.approx(np.mean(f1))
    assert est["accuracy"].standard_error == pytest.approx(np.sqrt(0.21 + 0.16 + 0.24) / 3)


def test_expected_auc_equals_the_pairwise_expectation_with_ties():
    rng = np.random.default_rng(3)
    p = np.round(rng.random(60), 1)  # many ties
    est = estimate_performance(p)
    above = p[:, None] > p[None, :]
    tied = p[:, None] == p[None, :]
    weight = p[:, None] * (1 - p[None, :])
    expected = (weight[above].sum() + 0.5 * weight[tied].sum()) / (p.sum() * (1 - p).sum())
    assert est["roc_auc"].value == pytest.approx(expected, rel=1e-12)


def test_standard_errors_match_the_spread_of_realised_metrics_under_calibration():
    rng = np.random.default_rng(5)
    p = rng.beta(2, 2, 400)
    est = estimate_performance(p, draws=2000, random_state=1)
    realised = {"accuracy": [], "f1": [], "roc_auc": []}
    for _ in range(1500):
        y = (rng.random(len(p)) < p).astype(int)
        realised["accuracy"].append(accuracy_score(y, p >= 0.5))
        realised["f1"].append(f1_score(y, p >= 0.5))
        realised["roc_auc"].append(roc_auc_score(y, p))
    for name, values in realised.items():
        assert est[name].standard_error == pytest.approx(np.std(values, ddof=1), rel=0.1)
        assert est[name].value == pytest.approx(np.mean(values), abs=0.005)


def test_isotonic_calibration_equals_scikit_learn():
    rng = np.random.default_rng(0)
    score = rng.random(500)
    label = (rng.random(500) < score**3).astype(int)
    window = rng.random(200)
    est = PerformanceEstimator().fit(label, score)
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(score, label)
    np.testing.assert_allclose(est.calibrate(window), reference.predict(window), rtol=0, atol=0)
    # the estimate is the hand formula applied to the calibrated probabilities
    q = reference.predict(window)
    right = np.where(window >= 0.5, q, 1 - q)
    assert est.estimate(window)["accuracy"].value == pytest.approx(right.mean())


def _make_classification_case(seed, shift, n_window=1000):
    x, y = make_classification(
        12_000, n_features=10, n_informative=5, flip_y=0.05, random_state=seed
    )
    model = LogisticRegression(max_iter=1000).fit(x[:4000], y[:4000])
    estimator = PerformanceEstimator(draws=300, calibration_draws=50, random_state=seed)
    estimator.fit(y[4000:8000], model.predict_proba(x[4000:8000])[:, 1])
    pool = np.arange(8000, 12_000)
    score = model.predict_proba(x[pool])[:, 1]
    # covariate shift that keeps P(label | score): rows are kept with a weight that depends
    # only on the model's score, so high-score rows are over-represented
    weight = np.exp(shift * 4 * (score - 0.5))
    rows = np.random.default_rng(seed).choice(
        len(pool), n_window, replace=False, p=weight / weight.sum()
    )
    return estimator.estimate(score[rows]), y[pool][rows], score[rows]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shift", "metrics"), [(0.0, ("accuracy", "roc_auc")), (0.5, ("accuracy",))]
)
def test_interval_covers_the_realised_metric_on_reweighted_windows(shift, metrics):
    covered = dict.fromkeys(metrics, 0)
    seeds = range(30)
    for seed in seeds:
        est, y, score = _make_classification_case(seed, shift)
        assert est.trusted, est.warnings
        realised = {"accuracy": accuracy_score(y, score >= 0.5), "roc_auc": roc_auc_score(y, score)}
        for name in metrics:
            covered[name] += est[name].covers(realised[name])
    for name in metrics:
        assert covered[name] >= 27, (name, covered[name])  # >= 90% of 30 seeds


@pytest.mark.slow
def test_interval_covers_the_realised_metric_on_breast_cancer():
    x, y = load_breast_cancer(return_X_y=True)
    covered = {"accuracy": 0, "roc_auc": 0}
    for seed in range(40):
        order = np.random.default_rng(seed).permutation(len(y))
        train, reference, window = order[:170], order[170:400], order[400:]
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
        model.fit(x[train], y[train])
        estimator = PerformanceEstimator(
            calibration="interpolated-isotonic", draws=300, calibration_draws=50, random_state=seed
        )
        estimator.fit(y[reference], model.predict_proba(x[reference])[:, 1])
        score = model.predict_proba(x[window])[:, 1]
        est = estimator.estimate(score)
        covered["accuracy"] += est["accuracy"].covers(accuracy_score(y[window], score >= 0.5))
        covered["roc_auc"] += est["roc_auc"].covers(roc_auc_score(y[window], score))
    # 230 reference rows: the calibrator's error is a large part of the interval
    assert covered["accuracy"] >= 36, covered  # 90% of 40 seeds
    assert covered["roc_auc"] >= 34, covered  # 85%: the AUC's coverage falls short of 90% here


def test_scores_that_no_monotone_map_calibrates_are_not_trusted():
    rng = np.random.default_rng(2)
    score = rng.random(4000)
    # positives at both ends: the label's rate is U-shaped in the score
    label = (rng.random(4000) < np.abs(2 * score - 1)).astype(int)
    est = PerformanceEstimator(calibration_draws=0).fit(label, score)
    result = est.estimate(rng.random(500))
    assert est.reference_ece_ > 0.05
    assert not result.trusted
    assert "held-out calibration error" in result.warnings[0]


def test_calibrated_scores_are_trusted_and_windows_off_the_reference_are_not():
    rng = np.random.default_rng(4)
    score = rng.uniform(0.2, 0.8, 4000)
    label = (rng.random(4000) < score).astype(int)
    est = PerformanceEstimator(calibration_draws=0).fit(label, score)
    assert est.reference_ece_ < 0.05
    assert est.estimate(rng.uniform(0.2, 0.8, 500)).trusted
    off = est.estimate(rng.uniform(0.0, 1.0, 500))
    assert not off.trusted
    assert off.share_outside_reference == pytest.approx(0.4, abs=0.06)


def test_calibration_error_widens_the_interval():
    rng = np.random.default_rng(6)
    score = rng.random(300)
    label = (rng.random(300) < score).astype(int)
    window = rng.random(2000)
    without = PerformanceEstimator(calibration_draws=0).fit(label, score).estimate(window)
    with_it = PerformanceEstimator(calibration_draws=50).fit(label, score).estimate(window)
    assert without["accuracy"].value == with_it["accuracy"].value
    assert with_it["accuracy"].standard_error > 1.5 * without["accuracy"].standard_error


def test_multiclass_estimator_calibrates_each_class_and_renormalises():
    x, y = make_classification(
        6000, n_features=8, n_informative=5, n_classes=3, n_clusters_per_class=1, random_state=0
    )
    model = LogisticRegression(max_iter=1000).fit(x[:2000], y[:2000])
    est = PerformanceEstimator(draws=200, calibration_draws=20)
    est.fit(y[2000:4000], model.predict_proba(x[2000:4000]))
    window = model.predict_proba(x[4000:])
    np.testing.assert_allclose(est.calibrate(window).sum(axis=1), 1.0)
    result = est.estimate(window)
    realised_accuracy = accuracy_score(y[4000:], window.argmax(axis=1))
    realised_f1 = f1_score(y[4000:], window.argmax(axis=1), average="macro")
    assert result["accuracy"].covers(realised_accuracy)
    assert result["macro_f1"].covers(realised_f1)
    assert abs(result["accuracy"].value - realised_accuracy) < 0.03


@pytest.mark.parametrize(
    ("kwargs", "call", "message"),
    [
        ({"calibration": "platt"}, "fit", "calibration must be one of"),
        ({"threshold": 1.5}, "fit", "threshold must be a number in"),
        ({"confidence": 1.0}, "fit", "confidence must be a number in"),
        ({"draws": 1}, "fit", "draws must be an integer >= 2"),
        ({"calibration_draws": 1}, "fit", "calibration_draws must be 0"),
        ({"max_ece": 2.0}, "fit", "max_ece must be a number in"),
    ],
)
def test_bad_settings_name_the_parameter(kwargs, call, message):
    with pytest.raises(ValueError, match=message):
        PerformanceEstimator(**kwargs).fit([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="y_prob must hold probabilities in"):
        estimate_performance([0.5, 1.2])
    with pytest.raises(ValueError, match="y_prob holds missing values"):
        estimate_performance([0.5, np.nan])
    with pytest.raises(ValueError, match="y_true must hold class indices 0 and 1"):
        PerformanceEstimator().fit([0, 2], [0.1, 0.9])
    with pytest.raises(ValueError, match="y_true has 3 rows but"):
        PerformanceEstimator().fit([0, 1, 1], [0.1, 0.9])
    est = PerformanceEstimator(calibration="none").fit([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
    with pytest.raises(ValueError, match="y_prob must be one-dimensional"):
        est.estimate([[0.1, 0.9]])
    with pytest.raises(RuntimeError, match="not fitted"):
        PerformanceEstimator().estimate([0.5])
    with pytest.raises(ValueError, match=r"y_pred must hold class indices 0\.\.1"):
        estimate_performance([0.1, 0.9], y_pred=[0, 3])


def test_matches_nannyml_cbpe_on_the_same_chunks():
    nannyml = pytest.importorskip("nannyml")
    import pandas as pd

    x, y = make_classification(8000, n_features=6, random_state=1)
    model = LogisticRegression(max_iter=1000).fit(x[:2000], y[:2000])
    score = model.predict_proba(x[2000:])[:, 1]
    frame = pd.DataFrame({"p": score, "pred": (score >= 0.5).astype(int), "y": y[2000:]})
    reference, analysis = frame.iloc[:3000], frame.iloc[3000:].drop(columns="y")
    cbpe = nannyml.CBPE(
        y_pred_proba="p",
        y_pred="pred",
        y_true="y",
        metrics=["roc_auc", "accuracy"],
        problem_type="classification_binary",
        chunk_size=1000,
    ).fit(reference)
    theirs = cbpe.estimate(analysis).filter(period="analysis").to_df()
    ours = PerformanceEstimator(calibration_draws=0).fit(reference["y"], reference["p"])
    for i in range(3):
        chunk = analysis["p"].to_numpy()[i * 1000 : (i + 1) * 1000]
        est = ours.estimate(chunk)
        assert est["accuracy"].value == pytest.approx(
            theirs[("accuracy", "value")].iloc[i], abs=1e-9
        )
        assert est["roc_auc"].value == pytest.approx(theirs[("roc_auc", "value")].iloc[i], abs=1e-7)


def test_standard_normal_quantile_sets_the_interval_width():
    est = estimate_performance([0.9, 0.6, 0.4, 0.2], confidence=0.9)
    m = est["accuracy"]
    z = stats.norm.ppf(0.95)
    assert m.low == pytest.approx(max(0.0, m.value - z * m.standard_error))
    assert m.high == pytest.approx(min(1.0, m.value + z * m.standard_error))


def test_a_window_that_leaves_metrics_undefined_gives_nan_without_a_warning():
    # Every row scored 0.02 against a reference where such scores are always negatives: the
    # calibrated probability is 0, so every draw predicts and finds no positive. Accuracy is
    # exactly 1 (all 30 rows right, with no spread); precision, recall, F1 and AUC have a
    # zero denominator in every draw. numpy's nanvar warned "Degrees of freedom <= 0" here,
    # which failed the monitoring service's evaluation of such a window.
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 400)
    scores = np.clip(truth * 0.8 + rng.normal(0, 0.1, 400) + 0.1, 0, 1)
    estimator = PerformanceEstimator().fit(truth, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = estimator.estimate(np.full(30, 0.02))
    accuracy = found.metrics["accuracy"]
    assert (accuracy.value, accuracy.low, accuracy.high) == (1.0, 1.0, 1.0)
    for name in ("precision", "recall", "f1", "roc_auc"):
        assert math.isnan(found.metrics[name].value), name


def _rate(level, x):
    return np.array([0.1, 0.3, 0.7, 0.9])[level] + 0.08 * np.tanh(x) * np.where(level >= 2, 1, -1)


def _shifted_reference(seed, rows=6000):
    # four score levels; within each, the model is more often right for a larger input x
    # the score ignores, so a window with more large x has a different P(label | score)
    # and a higher accuracy
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    level = rng.integers(0, 4, rows)
    score = np.array([0.2, 0.4, 0.6, 0.8])[level]
    rate = _rate(level, x)
    return x, score, (rng.random(rows) < rate).astype(int), level


def test_weighted_calibration_equals_the_hand_computed_weighted_rates():
    x, score, label, _ = _shifted_reference(0)
    rng = np.random.default_rng(1)
    window_x = rng.normal(1.0, 1.0, 1000)
    window_score = np.array([0.2, 0.4, 0.6, 0.8])[rng.integers(0, 4, 1000)]
    est = PerformanceEstimator(weighting="always", calibration_draws=0).fit(
        label, score, inputs=x[:, None]
    )
    found = est.estimate(window_score, inputs=window_x[:, None])
    weights = estimate_density_ratio(x[:, None], window_x[:, None]).weights
    # the rates stay ordered by level, so isotonic regression pools nothing: each level's
    # calibrated probability is its weighted share of positives
    rate = {
        s: np.sum(weights[score == s] * label[score == s]) / weights[score == s].sum()
        for s in (0.2, 0.4, 0.6, 0.8)
    }
    q = np.array([rate[s] for s in window_score])
    right = np.where(window_score >= 0.5, q, 1 - q)
    assert found.weighting == "density-ratio"
    assert found["accuracy"].value == pytest.approx(right.mean())
    # the labels' part of the interval is unchanged: Poisson-binomial on the weighted q
    assert found["accuracy"].standard_error == pytest.approx(
        np.sqrt(np.sum(right * (1 - right))) / 1000
    )
    plain = {s: label[score == s].mean() for s in (0.2, 0.4, 0.6, 0.8)}
    q_plain = np.array([plain[s] for s in window_score])
    assert found.unweighted["accuracy"] == pytest.approx(
        np.mean(np.where(window_score >= 0.5, q_plain, 1 - q_plain))
    )
    assert found.density_ratio["effective_sample_size"] == pytest.approx(
        weights.sum() ** 2 / np.sum(weights**2)
    )


def test_weighting_follows_the_window_inputs_under_covariate_shift():
    x, score, label, _ = _shifted_reference(2, rows=8000)
    rng = np.random.default_rng(3)
    window_x = rng.normal(1.0, 1.0, 2000)
    level = rng.integers(0, 4, 2000)
    window_score = np.array([0.2, 0.4, 0.6, 0.8])[level]
    # the window's expected accuracy from the rates that generated it
    rate = _rate(level, window_x)
    truth = np.mean(np.where(window_score >= 0.5, rate, 1 - rate))
    est = PerformanceEstimator(calibration_draws=0).fit(label, score, inputs=x[:, None])
    found = est.estimate(window_score, inputs=window_x[:, None])
    assert found.weighting == "density-ratio"  # auto: the inputs moved
    assert abs(found["accuracy"].value - truth) < 0.01
    # left unweighted, the estimate keeps the reference's lower accuracy
    assert found.unweighted["accuracy"] < truth - 0.02
    assert found.trusted


def test_auto_weighting_keeps_the_plain_calibration_when_inputs_did_not_move():
    x, score, label, _ = _shifted_reference(4)
    rng = np.random.default_rng(5)
    window_x = rng.normal(0.0, 1.0, 1000)
    window_score = np.array([0.2, 0.4, 0.6, 0.8])[rng.integers(0, 4, 1000)]
    est = PerformanceEstimator(calibration_draws=0).fit(label, score, inputs=x[:, None])
    found = est.estimate(window_score, inputs=window_x[:, None])
    plain = est.estimate(window_score)
    assert found.weighting == "none"
    assert found.unweighted is None
    assert found["accuracy"].value == plain["accuracy"].value
    assert abs(found.density_ratio["shift_z"]) < 3


def test_inputs_outside_the_reference_make_the_estimate_untrusted():
    x, score, label, _ = _shifted_reference(6)
    rng = np.random.default_rng(7)
    window_x = rng.normal(5.0, 1.0, 1000)
    window_score = np.array([0.2, 0.4, 0.6, 0.8])[rng.integers(0, 4, 1000)]
    est = PerformanceEstimator(calibration_draws=0).fit(label, score, inputs=x[:, None])
    found = est.estimate(window_score, inputs=window_x[:, None])
    assert not found.trusted
    assert any("outside the reference's support" in w for w in found.warnings)
    assert any("effective sample size" in w for w in found.warnings)


def test_window_inputs_need_the_reference_inputs_and_their_shape():
    est = PerformanceEstimator().fit([0, 1, 0, 1] * 5, [0.2, 0.8, 0.3, 0.7] * 5)
    with pytest.raises(ValueError, match="pass inputs= to fit"):
        est.estimate([0.5, 0.6], inputs=[[1.0], [2.0]])
    est.fit([0, 1, 0, 1] * 5, [0.2, 0.8, 0.3, 0.7] * 5, inputs=np.arange(40.0).reshape(20, 2))
    with pytest.raises(ValueError, match="inputs must have the reference's 2 columns"):
        est.estimate([0.5, 0.6], inputs=[[1.0], [2.0]])
    with pytest.raises(ValueError, match=r"inputs must have one row per score \(2\)"):
        est.estimate([0.5, 0.6], inputs=[[1.0, 2.0]])
    with pytest.raises(ValueError, match="weighting must be one of auto, always, never"):
        PerformanceEstimator(weighting="sometimes").fit([0, 1] * 5, [0.2, 0.8] * 5)
