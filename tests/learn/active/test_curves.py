import io
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from tests.learn.tracked import artifact_bytes, history

import opsloop
from opsloop.learn.active import STRATEGY_NAMES, compare_strategies

REPEATS = 3


def curves_for(weights):
    X, y = make_classification(
        1500,
        n_features=10,
        n_informative=5,
        n_classes=3,
        n_clusters_per_class=1,
        weights=weights,
        class_sep=1.5,
        flip_y=0,
        random_state=1,
    )
    return compare_strategies(
        LogisticRegression(),
        X[:1000],
        y[:1000],
        X[1000:],
        y[1000:],
        budget=100,
        batch_size=10,
        initial=10,
        repeats=REPEATS,
    )


@pytest.fixture(scope="module")
def balanced():
    return curves_for(None)


@pytest.fixture(scope="module")
def imbalanced():
    return curves_for([0.8, 0.15, 0.05])


def assert_beats_random(area):
    """Every informed strategy beats random in every repeat, and by more than the noise.

    The noise is the spread of the paired differences over repeats (their standard error),
    so the margin comes from the run itself.
    """
    for strategy in STRATEGY_NAMES[:-1]:
        diff = (area[strategy] - area["random"]).to_numpy()
        standard_error = diff.std(ddof=1) / np.sqrt(diff.size)
        assert diff.min() > 0, (strategy, diff)
        assert diff.mean() > 2 * standard_error, (strategy, diff)


def test_uncertainty_beats_random_on_balanced_data(balanced):
    assert_beats_random(balanced.area())


def test_uncertainty_finds_the_rare_classes(imbalanced):
    assert_beats_random(imbalanced.area("balanced_accuracy"))


def test_every_strategy_starts_from_the_same_rows(balanced):
    first = balanced.to_frame().query("labels_spent == 10")
    # one model per strategy and repeat, fitted on the same ten rows: one accuracy per repeat
    assert first.groupby("repeat")["accuracy"].nunique().eq(1).all()
    assert len(first) == REPEATS * len(STRATEGY_NAMES)


def test_frame_and_dict(imbalanced):
    frame = imbalanced.to_frame()
    assert list(frame.columns) == [
        "strategy",
        "repeat",
        "labels_spent",
        "accuracy",
        "balanced_accuracy",
    ]
    assert sorted(frame["labels_spent"].unique().tolist()) == list(range(10, 101, 10))
    mean = imbalanced.mean_curve()
    assert mean.loc[100, "margin"] == pytest.approx(
        frame.query("strategy == 'margin' and labels_spent == 100")["accuracy"].mean()
    )
    summary = json.loads(json.dumps(imbalanced.to_dict()))
    assert summary["repeats"] == REPEATS
    assert summary["mean_accuracy_area"]["random"] == pytest.approx(
        imbalanced.area()["random"].mean()
    )


def test_a_run_gets_each_strategys_mean_curve_and_the_table(tracking_home):
    X, y = make_classification(300, n_features=5, n_informative=3, random_state=2)
    with opsloop.start_run("curves", capture=False) as run:
        curves = compare_strategies(
            LogisticRegression(),
            X[:200],
            y[:200],
            X[200:],
            y[200:],
            strategies=["margin", "random"],
            budget=30,
            repeats=2,
            run=run,
        )
    stored = opsloop.get_run(run.run_id)
    frame = curves.to_frame()
    for strategy in ["margin", "random"]:
        rows = frame[frame["strategy"] == strategy]
        # the mean over the two repeats at each size, computed from the table itself
        expected = rows.groupby("labels_spent")["accuracy"].mean()
        steps, values = history(stored, f"{strategy}/accuracy")
        assert steps == [10, 20, 30]
        np.testing.assert_allclose(values, expected.loc[steps].to_numpy(), rtol=1e-12)
        steps, values = history(stored, f"{strategy}/balanced_accuracy")
        expected = rows.groupby("labels_spent")["balanced_accuracy"].mean()
        np.testing.assert_allclose(values, expected.loc[steps].to_numpy(), rtol=1e-12)
        assert stored.metrics[f"{strategy}/accuracy_area"] == pytest.approx(
            rows["accuracy"].mean(), rel=1e-12
        )
    assert stored.params["strategies"] == "margin,random" and stored.params["repeats"] == "2"
    table = pd.read_csv(io.BytesIO(artifact_bytes(stored, "learning_curves.csv")))
    pd.testing.assert_frame_equal(table, frame, check_dtype=False)
    assert json.loads(artifact_bytes(stored, "learning_curves.json")) == curves.to_dict()


def test_bad_initial_and_no_strategy_name_the_rule():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    with pytest.raises(ValueError, match=r"initial must not exceed the budget \(30\) nor the pool"):
        compare_strategies(LogisticRegression(), X, y, X, y, budget=30, initial=40)
    with pytest.raises(ValueError, match=r"nor the pool size \(5\), got 10"):
        compare_strategies(LogisticRegression(), X[:5], y[:5], X, y, budget=5, initial=10)
    with pytest.raises(ValueError, match="strategies must name at least one strategy"):
        compare_strategies(LogisticRegression(), X, y, X, y, budget=30, strategies=[])
