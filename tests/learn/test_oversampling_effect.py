"""Slice metrics before and after SMOTE: the same numbers as fitting, oversampling and slicing
by hand with scikit-learn, and the slice that was oversampled gains the most."""

import json

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_score, recall_score

from opsloop.analysis.slices import slice_metrics
from opsloop.learn.oversampling import smote
from opsloop.learn.oversampling_effect import oversampling_effect


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=3000, n_features=4, weights=[0.9], class_sep=0.7, random_state=1
    )
    return (X[:1500], y[:1500]), (X[1500:], y[1500:])


def test_the_numbers_are_scikit_learns_on_each_slice(data):
    train, test = data
    region = np.where(test[0][:, 0] > 0, "high", "low")
    effect = oversampling_effect(
        LogisticRegression(),
        train,
        test,
        {"x0": region},
        ["recall_score", "precision_score"],
        n_boot=40,
        seed=3,
    )
    X_more, y_more = smote(*train, seed=3)
    plain = LogisticRegression().fit(*train).predict(test[0])
    more = LogisticRegression().fit(X_more, y_more).predict(test[0])
    frame = effect.to_frame().set_index(["metric", "value"])
    for metric in (recall_score, precision_score):
        for value, rows in (
            ("(all)", slice(None)),
            ("high", region == "high"),
            ("low", region == "low"),
        ):
            row = frame.loc[(metric.__name__, value)]
            assert row["before"] == metric(test[1][rows], plain[rows])
            assert row["after"] == metric(test[1][rows], more[rows])
            assert row["change"] == row["after"] - row["before"]
            assert row["n"] == len(test[1][rows])
    # the intervals are slice_metrics' own, with the same seed for both tables
    by_hand = slice_metrics(test[1], plain, {"x0": region}, "recall_score", n_boot=40, seed=3)
    assert frame.loc[("recall_score", "low"), "before_ci_low"] == by_hand.rows[2].ci_low
    counts = np.bincount(train[1])
    assert effect.added == ((1, int(counts[0] - counts[1])),)
    json.dumps(effect.to_dict())


def test_oversampling_within_a_slice_lifts_that_slice(data):
    train, test = data
    inside = train[0][:, 0] <= 0
    region = np.where(test[0][:, 0] > 0, "high", "low")
    effect = oversampling_effect(
        LogisticRegression(), train, test, {"x0": region}, "recall_score", within=inside, n_boot=0
    )
    in_slice = np.bincount(train[1][inside])
    assert effect.added == ((1, int(in_slice[0] - in_slice[1])),)
    change = effect.to_frame().set_index("value")["change"]
    assert change["low"] > 0.1
    assert change["low"] > change["high"]


def test_bad_input_is_named(data):
    train, test = data
    with pytest.raises(TypeError, match=r"unknown slice options \['boots'\]"):
        oversampling_effect(
            LogisticRegression(), train, test, {"g": test[1]}, "recall_score", boots=3
        )
    with pytest.raises(TypeError, match="train must be a pair"):
        oversampling_effect(LogisticRegression(), train[0], test, {"g": test[1]}, "recall_score")
