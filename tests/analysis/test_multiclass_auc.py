"""One-vs-rest and one-vs-one (Hand & Till) AUCs against scikit-learn's roc_auc_score, and
the multiclass AUC check of a release gate on scikit-learn's wine data with two real models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from opsloop.analysis import ovo_auc, ovr_auc, paired_bootstrap_test
from opsloop.analysis.gate import evaluate_gate, parse_gate


@pytest.mark.parametrize("classes", [3, 4, 7])
@pytest.mark.parametrize("n", [30, 2_000])
def test_both_averages_equal_scikit_learns(classes, n):
    rng = np.random.default_rng(classes * n)
    y = rng.integers(0, classes, n)
    y[:classes] = np.arange(classes)  # every class present
    # Scores rounded to two decimals, so many ties, and shifted towards the true class.
    raw = rng.dirichlet(np.ones(classes), n) + 0.3 * np.eye(classes)[y]
    scores = np.round(raw / raw.sum(axis=1, keepdims=True), 2)
    scores /= scores.sum(axis=1, keepdims=True)
    for mine, how in ((ovr_auc, "ovr"), (ovo_auc, "ovo")):
        assert abs(mine(y, scores) - roc_auc_score(y, scores, multi_class=how)) <= 1e-12


def test_text_labels_and_columns_named_by_labels_on_iris():
    iris = load_iris()
    names = np.array(iris.target_names)[iris.target]
    model = GaussianNB().fit(iris.data[:, :2], names)
    scores = model.predict_proba(iris.data[:, :2])
    for mine, how in ((ovr_auc, "ovr"), (ovo_auc, "ovo")):
        expected = roc_auc_score(names, scores, multi_class=how, labels=model.classes_)
        assert abs(mine(names, scores, labels=model.classes_) - expected) <= 1e-12
        assert abs(mine(names, scores) - expected) <= 1e-12  # sorted classes by default
    # Columns given in another order, named so: the same AUC.
    flipped = scores[:, ::-1]
    assert ovr_auc(names, flipped, labels=model.classes_[::-1]) == pytest.approx(
        ovr_auc(names, scores), abs=1e-15
    )


def test_an_undefined_auc_and_bad_shapes_are_refused():
    scores = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match="a class has no rows"):
        ovr_auc([0, 0, 1, 1], scores, labels=[0, 1, 2])
    with pytest.raises(ValueError, match="a class has no rows"):
        ovo_auc([0, 0, 1, 1], scores, labels=[0, 1, 2])
    with pytest.raises(ValueError, match="y_true holds 2 classes and scores has 3 columns"):
        ovr_auc([0, 0, 1, 1], scores)
    with pytest.raises(ValueError, match="one row per label"):
        ovr_auc([0, 1, 2], scores)
    with pytest.raises(ValueError, match="'x', which is not one of labels"):
        ovo_auc(["a", "b", "c", "x"], scores, labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="at least 3 classes"):
        ovr_auc([0, 1, 1, 0], scores[:, :2])


@pytest.fixture(scope="module")
def wine():
    frame = load_wine(as_frame=True).frame
    train, test = train_test_split(frame, test_size=0.5, random_state=0, stratify=frame["target"])
    features = [c for c in frame.columns if c != "target"]
    weak = ["ash", "magnesium"]
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return {
        "test": test.reset_index(drop=True),
        "features": features,
        "logistic": logistic.fit(train[features], train["target"]),
        "bayes": GaussianNB().fit(train[features], train["target"]),
        "weak": GaussianNB().fit(train[weak], train["target"]),
    }


def _gate(metric, margin=0.05):
    return parse_gate(
        {
            "version": 1,
            "label": "target",
            "checks": [
                {"kind": "non_inferiority", "metric": metric, "margin": margin, "n_boot": 200},
                {"kind": "floor", "metric": metric, "min": 0.9},
            ],
        }
    )


@pytest.mark.parametrize("how", ["ovr", "ovo"])
def test_the_gate_judges_a_multiclass_auc_by_a_paired_bootstrap(wine, how):
    test, features = wine["test"], wine["features"]
    result = evaluate_gate(_gate(f"auc_{how}"), wine["bayes"], wine["logistic"], test)
    assert result.passed, result.to_frame().to_string()
    check, floor = result.checks
    assert check.name == f"auc_{how} non-inferiority (bootstrap)"
    truth = test["target"].to_numpy()
    mine = wine["bayes"].predict_proba(test[features])
    theirs = wine["logistic"].predict_proba(test[features])
    assert abs(check.evidence["candidate"] - roc_auc_score(truth, mine, multi_class=how)) <= 1e-12
    assert abs(check.evidence["baseline"] - roc_auc_score(truth, theirs, multi_class=how)) <= 1e-12
    assert floor.statistic == check.evidence["candidate"]
    # The same resamples scored by scikit-learn give the same p-value and interval.
    reference = paired_bootstrap_test(
        truth,
        mine,
        theirs,
        lambda y, p: roc_auc_score(y, p, multi_class=how, labels=[0, 1, 2]),
        margin=0.05,
        n_boot=200,
    )
    assert check.p_value == reference.p_value
    assert check.evidence["ci_low"] == pytest.approx(reference.ci_low, abs=1e-12)
    assert check.evidence["ci_high"] == pytest.approx(reference.ci_high, abs=1e-12)


def test_a_candidate_on_two_weak_features_fails_the_multiclass_auc(wine):
    result = evaluate_gate(
        _gate("auc_ovo", margin=0.02), wine["weak"], wine["logistic"], wine["test"]
    )
    check, floor = result.checks
    assert not check.passed and not floor.passed
    assert check.evidence["candidate"] < 0.85 < 0.99 < check.evidence["baseline"]
    assert "a drop of 0.02 or more is not ruled out" in check.reason


def test_auc_on_a_multiclass_model_names_the_multiclass_metrics(wine):
    gate = parse_gate(
        {
            "version": 1,
            "label": "target",
            "checks": [{"kind": "floor", "metric": "auc", "min": 0.5}],
        }
    )
    with pytest.raises(ValueError, match="for more than two classes use auc_ovr or auc_ovo"):
        evaluate_gate(gate, wine["bayes"], wine["logistic"], wine["test"])


def test_class_scores_compare_models_of_the_same_classes(wine):
    test = wine["test"]
    other = GaussianNB().fit(test[wine["features"]], test["target"].map({0: 0, 1: 1, 2: 5}))
    with pytest.raises(
        ValueError, match=r"predicts the classes \[0, 1, 2\] and baseline \[0, 1, 5\]"
    ):
        evaluate_gate(_gate("auc_ovr"), wine["bayes"], other, test)
    unknown = pd.concat([test, test.head(1).assign(target=9)], ignore_index=True)
    with pytest.raises(ValueError, match="holds 9, which is not one of candidate's classes"):
        evaluate_gate(_gate("auc_ovr"), wine["bayes"], wine["logistic"], unknown)
