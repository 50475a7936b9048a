"""What the default funnel keeps on data nobody here wrote, and on data whose answer is known.

The kept sets are judged by a fixed yardstick: cross-validated ROC AUC of a logistic
regression on standardised features, 5 stratified folds shuffled with seed 0.
"""

import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.feature_selection import f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from opsloop.data.selection import FeatureFunnel, ModelImportance, NullFraction


def cv_auc(X: pd.DataFrame, y, columns) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return cross_val_score(model, X[list(columns)], y, cv=folds, scoring="roc_auc").mean()


@pytest.fixture(scope="module")
def breast_cancer_runs():
    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target
    runs = {seed: FeatureFunnel(random_state=seed).fit(X, y).report_ for seed in range(5)}
    return X, y, runs


def test_breast_cancer_kept_set_loses_at_most_0005_auc(breast_cancer_runs):
    X, y, runs = breast_cancer_runs
    everything = cv_auc(X, y, X.columns)
    assert everything == pytest.approx(0.9955, abs=5e-4)
    kept = runs[0].kept
    assert cv_auc(X, y, kept) >= everything - 0.005
    # The strongest column by the F test is kept (it was dropped before).
    scores = pd.Series(f_classif(X, y)[0], index=X.columns)
    assert scores.idxmax() == "worst concave points" and "worst concave points" in kept


def test_breast_cancer_kept_sets_agree_across_seeds(breast_cancer_runs):
    _, _, runs = breast_cancer_runs
    sets = [set(report.kept) for report in runs.values()]
    jaccard = [len(a & b) / len(a | b) for a, b in itertools.combinations(sets, 2)]
    assert np.mean(jaccard) >= 0.8


def test_breast_cancer_drops_against_relevance_say_why(breast_cancer_runs):
    _, _, runs = breast_cancer_runs
    for report in runs.values():
        best_kept = max(report[c].relevance for c in report.kept)
        for decision in report.columns:
            if decision.step == "model_importance" and decision.relevance > best_kept:
                assert decision.reason.startswith("it scores higher on f_classif")
        # A correlated column dropped for its group names the member that stays.
        grouped = [
            c
            for c in report.columns
            if c.step == "model_importance" and "judged as a group" in c.reason
        ]
        assert grouped and all(
            any(repr(k) in c.reason for k in report.kept) or "dropped too" in c.reason
            for c in grouped
        )


def test_one_signal_among_200_columns_is_found_with_few_false_positives():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(1000, 200)), columns=[f"c{i}" for i in range(200)])
    # A weak signal (half its variance is noise): the funnel kept five noise columns with it.
    y = (X["c7"] + rng.normal(size=1000) > 0).astype(int)
    kept = FeatureFunnel(random_state=0).fit(X, y).report_.kept
    assert "c7" in kept
    assert len(kept) - 1 <= 2


@pytest.mark.parametrize("data_seed", [0, 1])
def test_make_classification_informative_columns_are_all_kept(data_seed):
    X, y = make_classification(
        n_samples=1000,
        n_features=20,
        n_informative=5,
        n_redundant=0,
        shuffle=False,
        random_state=data_seed,
    )
    report = FeatureFunnel(random_state=0).fit(X, y).report_
    assert {"x0", "x1", "x2", "x3", "x4"} <= set(report.kept)


def test_a_dropped_column_more_relevant_than_every_kept_one_says_so():
    rng = np.random.default_rng(0)
    n = 2000
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = ((a > 0) ^ (b > 0)).astype(int)  # no marginal signal in a or b
    frame = pd.DataFrame({"a": a, "b": b, "marginal": y + 1.5 * rng.normal(size=n)})
    funnel = FeatureFunnel(steps=[ModelImportance(k=1)]).fit(frame, y)
    report = funnel.report_
    assert report.kept in (["a"], ["b"])
    scores = f_classif(frame, y)[0]
    assert scores[2] == scores.max()
    reason = report["marginal"].reason
    assert reason.startswith(f"it scores higher on f_classif ({scores[2]:.4g}) than every kept")
    importance = report["marginal"].importance
    top = max(report["a"].importance, report["b"].importance)
    assert importance < 0.015 * top
    assert reason.endswith(f"is not at least 1.5% of the most important one's ({top:.4g})")


def test_date_strings_are_judged_and_text_is_reported_not_judged():
    rng = np.random.default_rng(1)
    n = 600
    days = pd.date_range("2020-01-01", periods=n, freq="D")
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            # Date columns as a CSV file gives them: text.
            "opened": days.strftime("%Y-%m-%d").to_numpy(dtype=object),
            "closed": (days + pd.Timedelta(hours=5))
            .strftime("%Y-%m-%dT%H:%M:%S")
            .to_numpy(dtype=object),
            "note": [f"free text number {i}" for i in range(n)],
        }
    )
    y = rng.integers(0, 2, n)  # a random target: no column should be kept for it
    funnel = FeatureFunnel(random_state=0).fit(frame, y)
    report = funnel.report_
    assert report["opened"].kind == "numeric" and report["closed"].kind == "numeric"
    # The two dates are one timestamp copied; one goes as redundant, the other is judged.
    assert report["closed"].redundant_with == "opened"
    assert report["opened"].step in ("relevance", "model_importance")
    assert report.not_judged == ["note"]
    assert "relevance, model_importance cannot measure it" in report["note"].reason
    assert "opened" not in report.kept and "note" not in report.kept
    assert funnel.get_feature_names_out().tolist() == report.kept


def test_without_target_steps_text_is_judged_by_the_steps_there_are():
    frame = pd.DataFrame({"note": [f"text {i}" for i in range(50)], "x": np.arange(50.0)})
    report = FeatureFunnel(steps=[NullFraction()]).fit(frame).report_
    assert report.kept == ["note", "x"] and report.not_judged == []
