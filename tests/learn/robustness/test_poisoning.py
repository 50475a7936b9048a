"""Label flipping hurts clean accuracy; confident learning finds the flipped rows."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.metrics import precision_score, recall_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

from opsloop.learn.robustness import (
    find_label_issues,
    flip_labels,
    label_flip_curve,
    label_flip_detection,
)
from opsloop.learn.robustness.poisoning import confident_label_issues

KNN = KNeighborsClassifier(10)


@pytest.fixture(scope="module")
def digits_rows():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def test_flip_labels_changes_exactly_the_rows_it_names():
    y = np.repeat(np.array(["a", "b", "c"]), 100)
    poisoned, flipped = flip_labels(y, 0.2, seed=3)
    assert len(flipped) == 60
    np.testing.assert_array_equal(np.flatnonzero(poisoned != y), flipped)
    assert set(poisoned) == {"a", "b", "c"}
    untouched, none = flip_labels(y, 0.0)
    assert len(none) == 0 and (untouched == y).all()
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\), got 1\.0"):
        flip_labels(y, 1.0)


def test_clean_accuracy_falls_with_the_flip_rate(digits_rows):
    X, y = digits_rows
    curve = label_flip_curve(KNN, X[:1000], y[:1000], X[1000:], y[1000:], [0.0, 0.2, 0.5, 0.7])
    assert curve.flipped == (0, 200, 500, 700)
    clean = clone(KNN).fit(X[:1000], y[:1000]).score(X[1000:], y[1000:])
    assert curve.accuracy[0] == clean
    assert list(curve.accuracy) == sorted(curve.accuracy, reverse=True)
    assert curve.accuracy[-1] < clean - 0.2
    # each point is the model trained on that poisoned copy
    poisoned, _ = flip_labels(y[:1000], 0.5, seed=0)
    by_hand = clone(KNN).fit(X[:1000], poisoned).score(X[1000:], y[1000:])
    assert curve.accuracy[2] == by_hand


def test_confident_learning_by_hand():
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.9, 0.1], [0.2, 0.8], [0.55, 0.45]])
    labels = np.array([0, 0, 1, 1, 1, 1])
    # thresholds: class 0 (0.9 + 0.8) / 2 = 0.85; class 1 (0.7 + 0.1 + 0.8 + 0.45) / 4 = 0.5125
    # row 3 reaches class 0's only; row 5 reaches neither (0.55 < 0.85, 0.45 < 0.5125)
    assert confident_label_issues(p, labels).tolist() == [3]


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_detection_precision_and_recall(digits_rows, rate):
    X, y = digits_rows
    result = label_flip_detection(KNN, X[:800], y[:800], rate, seed=1)
    assert result.flipped == round(rate * 800)
    assert result.precision > 0.85 and result.recall > 0.75
    # the same numbers from scikit-learn's scores on the masks
    poisoned, flipped = flip_labels(y[:800], rate, seed=1)
    issues = find_label_issues(KNN, X[:800], poisoned, seed=1)
    truth = np.isin(np.arange(800), flipped)
    found = issues.mask(800)
    assert result.precision == pytest.approx(precision_score(truth, found))
    assert result.recall == pytest.approx(recall_score(truth, found))
    # the out-of-fold probabilities are cross_val_predict's, and rows are ranked by them
    folds = StratifiedKFold(5, shuffle=True, random_state=1)
    expected = cross_val_predict(KNN, X[:800], poisoned, cv=folds, method="predict_proba")
    np.testing.assert_allclose(issues.out_of_fold, expected)
    ranked = issues.self_confidence[issues.rows]
    assert (np.diff(ranked) >= 0).all()
