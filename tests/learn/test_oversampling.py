"""SMOTE: new rows on the segments between a row and its same-class neighbours, in the numbers
asked for, and a minority class the model finds again after oversampling."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score

from opsloop.learn.oversampling import smote


def test_new_rows_lie_between_a_row_and_its_nearest_neighbour():
    # class 1: A = (0, 0), B = (1, 0), C = (0, 5). Nearest neighbours: A -> B, B -> A, C -> A,
    # so with k = 1 every new row is on the segment AB or AC, never inside BC
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0], [9.0, 9.0], [9.0, 8.0], [8, 9], [8, 8]])
    y = np.array([1, 1, 1, 0, 0, 0, 0])
    X_new, y_new = smote(X, y, n_new={1: 200}, k_neighbors=1, seed=0)
    np.testing.assert_array_equal(X_new[:7], X)  # the originals first, unchanged
    np.testing.assert_array_equal(y_new, np.r_[y, np.ones(200, int)])
    added = X_new[7:]
    on_ab = (added[:, 1] == 0) & (added[:, 0] >= 0) & (added[:, 0] <= 1)
    on_ac = (added[:, 0] == 0) & (added[:, 1] >= 0) & (added[:, 1] <= 5)
    assert (on_ab | on_ac).all()
    # seeds are drawn uniformly: A and B give AB (2 in 3), C gives AC (1 in 3)
    assert 0.55 < on_ab.mean() < 0.78
    # with k = 2 the pair B-C is possible too
    wider, _ = smote(X, y, n_new={1: 200}, k_neighbors=2, seed=0)
    inside_bc = (wider[7:, 0] > 0) & (wider[7:, 1] > 0)
    assert inside_bc.any()
    np.testing.assert_allclose(wider[7:][inside_bc].sum(axis=1) - wider[7:][inside_bc, 1] * 0.8, 1)


def test_default_balances_the_classes_and_a_slice_stays_in_the_slice():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(10, 1, (12, 2))]
    y = np.r_[np.zeros(40, int), np.ones(10, int), np.zeros(8, int), np.ones(4, int)]
    region = np.r_[np.zeros(50, bool), np.ones(12, bool)]  # the slice around (10, 10)
    _, y_all = smote(X, y)
    assert np.bincount(y_all).tolist() == [48, 48]
    X_slice, y_slice = smote(X, y, within=region)
    # in the slice 8 rows of class 0 and 4 of class 1: 4 new class-1 rows, 14 + 4 in all
    assert np.bincount(y_slice).tolist() == [48, 18]
    added = X_slice[62:]
    slice_rows = X[region]
    assert (added >= slice_rows.min(axis=0)).all() and (added <= slice_rows.max(axis=0)).all()


def test_oversampling_raises_the_minority_recall():
    X, y = make_classification(
        n_samples=3000, n_features=5, n_informative=3, weights=[0.95], class_sep=0.6, random_state=0
    )
    train, test = slice(0, 2000), slice(2000, None)
    before = LogisticRegression().fit(X[train], y[train]).predict(X[test])
    X_new, y_new = smote(X[train], y[train], seed=0)
    after = LogisticRegression().fit(X_new, y_new).predict(X[test])
    recall_before = recall_score(y[test], before)
    recall_after = recall_score(y[test], after)
    assert recall_after > recall_before + 0.2


def test_bad_input_is_named():
    X, y = np.zeros((4, 2)), np.array([0, 0, 0, 1])
    with pytest.raises(ValueError, match="class 1 has 1 row"):
        smote(X, y)
    with pytest.raises(ValueError, match="k_neighbors must be a positive int"):
        smote(X, y, k_neighbors=0)
    with pytest.raises(ValueError, match="within must be a boolean mask of 4 rows"):
        smote(X, y, within=[True])
    with pytest.raises(ValueError, match="n_new: class 0 asks for -1 rows"):
        smote(X, y, n_new={0: -1})


def test_a_fractional_number_of_new_rows_is_refused_not_truncated():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ValueError, match=r"n_new: class 0 asks for 2\.5 rows, a whole number"):
        smote(X, y, n_new={0: 2.5})
    with pytest.raises(ValueError, match="n_new: class 0 asks for True rows"):
        smote(X, y, n_new={0: True})
    X_new, y_new = smote(X, y, n_new={0: np.int64(145)})
    # 212 malignant and 357 benign tumours: 145 new malignant rows balance them
    assert np.bincount(y_new).tolist() == [357, 357]
    assert X_new.shape == (714, 30)


def test_a_whole_valued_float_number_of_new_rows_is_a_count():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    counts = np.bincount(y)
    n_new = np.round(counts[1] * 1.0 - counts[0])  # np.float64(145.0)
    X_float, y_float = smote(X, y, n_new={0: n_new}, seed=3)
    X_int, y_int = smote(X, y, n_new={0: 145}, seed=3)
    np.testing.assert_array_equal(X_float, X_int)
    np.testing.assert_array_equal(y_float, y_int)
    assert np.bincount(y_float).tolist() == [357, 357]
    assert len(smote(X, y, n_new={0: 2.0})[1]) == len(y) + 2
    with pytest.raises(ValueError, match=r"asks for np.float64\(145.5\) rows, a whole number"):
        smote(X, y, n_new={0: np.float64(145.5)})
    for bad in (np.True_, float("inf"), float("nan"), "3"):
        with pytest.raises(ValueError, match="a whole number needed"):
            smote(X, y, n_new={0: bad})
