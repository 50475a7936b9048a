"""The toolkit's refusals of bad feature rows: NaN, wrong width for the model, bad seeds.

Probed as a new user would, on scikit-learn's bundled iris (4 features) and wine (13), with
a small torch network for iris. Each refusal names the argument, the row and column or the
width the model takes; before, numpy, torch or scikit-learn spoke (or nothing did: a torch
attack returned NaN rows).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.linear_model import LogisticRegression

from opsloop.learn.feature_rows import check_model_width, finite_rows
from opsloop.learn.oversampling import smote

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

NAN_AT = r"row 7, column 2 is NaN; the toolkit needs finite numbers"
WIDTH = r"has 13 features per row; model takes 4 \(its first layer is Linear\(4, \.\.\.\)\)"


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with_nan = X.astype(np.float32)
    with_nan[7, 2] = np.nan
    wine = load_wine(return_X_y=True)[0][:20].astype(np.float32)
    return X.astype(np.float32), y, model, with_nan, wine


def _attacks():
    from opsloop.learn.robustness import accuracy_under_attack, fgsm, margin_pgd, pgd

    return {
        "fgsm": lambda model, X, y: fgsm(model, X, eps=0.1),
        "pgd": lambda model, X, y: pgd(model, X, eps=0.1, steps=2),
        "margin_pgd": lambda model, X, y: margin_pgd(model, X, eps=0.1, steps=2),
        "accuracy_under_attack": lambda model, X, y: accuracy_under_attack(
            model, X, y, [0.1], attack="fgsm"
        ),
        "TorchClassifier": lambda model, X, y: (
            __import__("opsloop.learn.robustness", fromlist=["TorchClassifier"])
            .TorchClassifier(model)
            .predict_proba(X)
        ),
    }


@pytest.mark.parametrize("name", list(_attacks()))
def test_attacks_refuse_nan_and_the_wrong_width_naming_x(iris, name):
    X, y, model, with_nan, wine = iris
    attack = _attacks()[name]
    with pytest.raises(ValueError, match=f"^X: {NAN_AT}"):
        attack(model, with_nan, y)
    with pytest.raises(ValueError, match=f"^X {WIDTH}"):
        attack(model, wine, y[:20])
    assert np.isfinite(
        np.asarray(
            attack(model, X[:20], y[:20]).accuracy
            if name == "accuracy_under_attack"
            else attack(model, X[:20], y[:20])
        )
    ).all()


def test_quantization_and_export_refuse_the_wrong_width_and_nan(iris):
    from opsloop.learn.quantize import compare_variants, export_onnx, quantize_static_int8

    X, y, model, with_nan, wine = iris
    with pytest.raises(ValueError, match=f"^X_test {WIDTH}"):
        compare_variants(model, wine, y[:20], variants=["float32"])
    with pytest.raises(ValueError, match=f"^X_test: {NAN_AT}"):
        compare_variants(model, with_nan, y, variants=["float32"])
    with pytest.raises(ValueError, match=f"^calibration {WIDTH}"):
        compare_variants(model, X, y, calibration=wine, variants=["float32"])
    with pytest.raises(ValueError, match=f"^calibration {WIDTH}"):
        quantize_static_int8(model, wine)
    with pytest.raises(ValueError, match=f"^calibration: {NAN_AT}"):
        quantize_static_int8(model, with_nan)
    with tempfile.TemporaryDirectory() as folder:
        with pytest.raises(ValueError, match=f"^example {WIDTH}"):
            export_onnx(model, wine, Path(folder) / "m.onnx")
        assert not (Path(folder) / "m.onnx").exists()


def test_distillation_names_data_and_which_model_takes_what(iris):
    from opsloop.learn.distill import distill

    X, y, _, with_nan, wine = iris
    teacher = LogisticRegression(max_iter=1_000).fit(X, y)
    student = torch.nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"^data: X has 13 features per row; teacher takes 4"):
        distill(teacher, student, (wine, y[:20]), epochs=1)
    wide_teacher = LogisticRegression(max_iter=5_000).fit(wine, np.arange(20) % 3)
    with pytest.raises(ValueError, match=r"^data: X has 13 features per row; student takes 4"):
        distill(wide_teacher, student, (wine, np.arange(20) % 3), epochs=1)
    with pytest.raises(ValueError, match=f"^data: X: {NAN_AT}"):
        distill(teacher, student, (with_nan, y), epochs=1)
    before = [p.detach().clone() for p in student.parameters()]
    with pytest.raises(ValueError, match=r"^test_data: X has 13 features per row; teacher"):
        distill(teacher, student, (X, y), epochs=1, test_data=(wine, y[:20]))
    # refused before training: the student is untouched
    assert all(torch.equal(a, b) for a, b in zip(before, student.parameters(), strict=True))


def test_adversarial_training_names_train_and_test(iris):
    from opsloop.learn.robustness import adversarial_training

    X, y, model, with_nan, wine = iris
    with pytest.raises(ValueError, match=r"^test: X has 13 features per row; model takes 4"):
        adversarial_training(model, (X, y), (wine, y[:20]), eps=0.1, epochs=1)
    with pytest.raises(ValueError, match=f"^train: X: {NAN_AT}"):
        adversarial_training(model, (with_nan, y), (X, y), eps=0.1, epochs=1)
    with pytest.raises(ValueError, match=r"^seed must be a whole number from 0 to 2\*\*64 - 1"):
        adversarial_training(model, (X, y), (X, y), eps=0.1, epochs=1, seed=-1)


@pytest.mark.parametrize("seed", ["abc", -1, 1.5, 2**64, True, None])
def test_pgd_refuses_a_seed_naming_seed_and_the_rule(iris, seed):
    from opsloop.learn.robustness import margin_pgd, pgd

    X, _, model, _, _ = iris
    for attack in (pgd, margin_pgd):
        with pytest.raises(ValueError, match=r"^seed must be a whole number from 0 to 2\*\*64 - 1"):
            attack(model, X[:5], eps=0.1, steps=1, random_init=True, seed=seed)


def test_pgd_takes_every_seed_torch_takes(iris):
    from opsloop.learn.robustness import pgd

    X, _, model, _, _ = iris
    for seed in (0, np.int64(5), 2**64 - 1):
        first = pgd(model, X[:5], eps=0.1, steps=2, random_init=True, seed=seed)
        again = pgd(model, X[:5], eps=0.1, steps=2, random_init=True, seed=seed)
        np.testing.assert_array_equal(first, again)


def test_nan_is_named_by_row_and_column_label_in_a_frame():
    data = load_breast_cancer(as_frame=True).frame.drop(columns="target")
    data.iloc[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"^X: row 3, column 'mean compactness' \(5\) is NaN"):
        finite_rows("X", data)
    with pytest.raises(ValueError, match=r"^X: row 3, column 'mean compactness' \(5\) is NaN"):
        smote(data, np.zeros(len(data), int))
    assert finite_rows("X", data.fillna(0.0)).shape == (569, 30)


def test_infinite_and_non_numeric_values_are_named():
    X = np.zeros((4, 3))
    X[2, 1] = -np.inf
    with pytest.raises(ValueError, match=r"^X: row 2, column 1 is -inf"):
        finite_rows("X", X)
    with pytest.raises(ValueError, match=r"^X must hold numbers, got values such as 'a'"):
        finite_rows("X", pd.DataFrame({"a": [1.0], "b": ["a"]}))


def test_width_is_checked_only_where_the_model_says_it():
    X = np.zeros((3, 13))

    # a custom module: its forward may use its layers in any order, so nothing is guessed
    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(8, 2)
            self.body = torch.nn.Linear(13, 8)

        def forward(self, x):
            return self.head(self.body(x))

    assert check_model_width("X", X, Custom()) is None
    dropout_first = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.BatchNorm1d(4))
    with pytest.raises(ValueError, match=r"model takes 4 \(its first layer is BatchNorm1d\(4\)\)"):
        check_model_width("X", X, dropout_first)
    fitted = LogisticRegression(max_iter=1_000).fit(*load_iris(return_X_y=True))
    with pytest.raises(ValueError, match=r"model takes 4 \(n_features_in_"):
        check_model_width("X", X, fitted)


@pytest.fixture(scope="module")
def wine_with_nan():
    from sklearn.model_selection import train_test_split

    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    X_train = X_train.copy()
    X_train[4, 9] = np.nan
    return X_train, X_test, y_train, y_test


def test_functions_handing_x_to_an_estimator_leave_nan_and_infinity_to_it(wine_with_nan):
    """NaN and infinity in ``X`` are the estimator's to judge wherever ``X`` goes to it: a
    pipeline that imputes, wrappers around histogram gradient boosting (no tags of their own
    that say so) and boosting with infinite values give the results scikit-learn gives them
    directly; an estimator that refuses NaN says so in its own words."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from opsloop.learn.active import SimulatedOracle, active_learning
    from opsloop.learn.robustness import (
        extraction_curve,
        find_label_issues,
        label_flip_curve,
        threshold_attack,
    )
    from opsloop.learn.robustness.output_defences import RestrictedOutput

    X_train, X_test, y_train, y_test = wine_with_nan
    X_test = X_test.copy()
    X_test[1, 3] = np.nan
    boosting = HistGradientBoostingClassifier(max_iter=10, random_state=0)
    estimators = {
        "imputing pipeline": make_pipeline(
            SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=5_000)
        ),
        "grid search": GridSearchCV(boosting, {"learning_rate": [0.1]}, cv=2),
        "calibrated": CalibratedClassifierCV(boosting, cv=2),
    }
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    # four rows of each class first, so that a wrapper's own 2-fold split always has two
    first = np.concatenate([np.flatnonzero(y_train == c)[:4] for c in range(3)])
    for name, estimator in estimators.items():
        issues = find_label_issues(estimator, X_train, y_train, cv=3, seed=0)
        expected = cross_val_predict(estimator, X_train, y_train, cv=folds, method="predict_proba")
        np.testing.assert_allclose(issues.out_of_fold, expected, err_msg=name)
        learned = active_learning(
            estimator, X_train, SimulatedOracle(y_train), budget=22, initial=first, random_state=0
        )
        assert len(learned.queried) == 22, name
        curve = label_flip_curve(estimator, X_train, y_train, X_test, y_test, [0.0])
        fitted = estimator.fit(X_train, y_train)
        assert curve.accuracy[0] == pytest.approx(fitted.score(X_test, y_test)), name
    # the output defence's wrapper has no scikit-learn tags; the model behind it takes NaN
    restricted = RestrictedOutput(boosting.fit(X_train, y_train), top_k=1)
    extracted = extraction_curve(restricted, X_train, X_test, y_test, [30], surrogate=boosting)
    assert 0 < extracted.fidelity[0] <= 1
    attack = threshold_attack(restricted, (X_train, y_train), (X_test, y_test))
    assert 0 <= attack.auc <= 1
    infinite = X_train.copy()
    infinite[2, 0], infinite[5, 1] = np.inf, -np.inf
    issues = find_label_issues(boosting, infinite, y_train, cv=3, seed=0)
    expected = cross_val_predict(boosting, infinite, y_train, cv=folds, method="predict_proba")
    np.testing.assert_allclose(issues.out_of_fold, expected)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        find_label_issues(LogisticRegression(), X_train, y_train, cv=3)


def test_pandas_missing_values_of_nullable_columns_are_named_as_nan():
    frame = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "b": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"^X: row 1, column 'a' \(0\) is NaN"):
        finite_rows("X", frame)


def test_the_first_non_finite_cell_is_found_past_the_first_block_of_rows(monkeypatch):
    """The check runs by blocks of rows: the cell named is the first in row order, in any block,
    and a frame of numpy columns is read without pandas' missing-value conversion."""
    from opsloop.learn import feature_rows

    monkeypatch.setattr(feature_rows, "_CHECK_CELLS", 6)  # 2 rows of 3 per block
    X = np.zeros((7, 3))
    X[5, 1], X[6, 0] = -np.inf, np.nan
    with pytest.raises(ValueError, match=r"^X: row 5, column 1 is -inf"):
        finite_rows("X", X)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"^X: row 5, column 'b' \(1\) is -inf"):
        finite_rows("X", frame)
    assert finite_rows("X", X[:5]).shape == (5, 3)
    assert finite_rows("X", np.arange(6).reshape(3, 2), dtype=None).dtype.kind == "i"
