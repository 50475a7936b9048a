"""Model extraction: fidelity grows with the number of answers, computed as defined."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from opsloop.learn.robustness import extraction_curve


@pytest.fixture(scope="module")
def target():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    forest = RandomForestClassifier(50, random_state=0, n_jobs=1).fit(X[:600], y[:600])
    return forest, X[600:1300], X[1300:], y[1300:]


def test_fidelity_and_accuracy_against_n(target):
    forest, pool, X_test, y_test = target
    curve = extraction_curve(forest, pool, X_test, y_test, [1, 30, 100, 700])
    assert curve.fidelity[0] < curve.fidelity[1] < curve.fidelity[3]
    assert curve.fidelity[3] > 0.85
    # each point is the agreement of that surrogate with the target, as defined
    for n, fidelity, accuracy, copy in zip(
        curve.n_queries, curve.fidelity, curve.accuracy, curve.surrogates, strict=True
    ):
        assert fidelity == accuracy_score(forest.predict(X_test), copy.predict(X_test)), n
        assert accuracy == accuracy_score(y_test, copy.predict(X_test))
    assert curve.target_accuracy == accuracy_score(y_test, forest.predict(X_test))
    # one answer holds one class: the copy can only repeat it
    assert len(np.unique(curve.surrogates[0].predict(X_test))) == 1


def test_the_surrogate_learns_the_targets_answers_not_the_truth(target):
    forest, pool, X_test, y_test = target
    order = np.random.default_rng(5).permutation(len(pool))
    by_hand = LogisticRegression(max_iter=500).fit(
        pool[order[:200]], forest.predict(pool[order[:200]])
    )
    curve = extraction_curve(
        forest, pool, X_test, y_test, [200], surrogate=LogisticRegression(max_iter=500), seed=5
    )
    np.testing.assert_array_equal(curve.surrogates[0].predict(X_test), by_hand.predict(X_test))
    frame = curve.to_frame()
    assert frame.columns.tolist() == ["n_queries", "fidelity", "accuracy"]


def test_bad_budgets_are_named(target):
    forest, pool, X_test, y_test = target
    with pytest.raises(ValueError, match=r"n_queries: 701 is outside 1\.\.700"):
        extraction_curve(forest, pool, X_test, y_test, [701])
    with pytest.raises(TypeError, match="model must have predict"):
        extraction_curve(object(), pool, X_test, y_test, [10])
