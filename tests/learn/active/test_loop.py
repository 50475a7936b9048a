import json

import numpy as np
import pytest
import skops.io
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from tests.learn.tracked import artifact_bytes, history

import opsloop
from opsloop.learn.active import SimulatedOracle, active_learning


@pytest.fixture(scope="module")
def problem():
    X, y = make_classification(400, n_features=5, n_informative=3, random_state=0)
    return X[:300], y[:300], X[300:], y[300:]


def test_spends_exactly_the_budget(problem):
    X, y, Xt, yt = problem
    oracle = SimulatedOracle(y)
    result = active_learning(
        LogisticRegression(),
        X,
        oracle,
        strategy="margin",
        budget=45,
        batch_size=10,
        initial=5,
        X_test=Xt,
        y_test=yt,
        random_state=0,
    )
    assert result.labels_spent == (5, 15, 25, 35, 45)
    assert oracle.n_answered_ == 45
    assert len(result.queried) == len(set(result.queried)) == 45
    assert len(result.accuracy) == 5


def test_final_model_and_accuracy_match_a_refit_on_the_queried_rows(problem):
    X, y, Xt, yt = problem
    result = active_learning(
        LogisticRegression(),
        X,
        SimulatedOracle(y),
        strategy="entropy",
        budget=30,
        X_test=Xt,
        y_test=yt,
        random_state=1,
    )
    refit = LogisticRegression().fit(X[list(result.queried)], y[list(result.queried)])
    assert result.accuracy[-1] == pytest.approx((refit.predict(Xt) == yt).mean(), abs=1e-12)
    np.testing.assert_allclose(result.estimator.coef_, refit.coef_)


def test_second_query_is_the_top_margin_row_of_the_first_model(problem):
    X, y, _, _ = problem
    first = np.arange(10)
    result = active_learning(
        LogisticRegression(),
        X,
        SimulatedOracle(y),
        strategy="margin",
        budget=11,
        batch_size=1,
        initial=first,
        random_state=0,
    )
    model = LogisticRegression().fit(X[first], y[first])
    proba = model.predict_proba(X[10:])
    expected = 10 + int(np.argmin(np.abs(proba[:, 1] - proba[:, 0])))
    assert result.queried == (*range(10), expected)


def test_cold_start_draws_until_a_second_class_appears():
    y = np.r_[np.ones(5, dtype=int), np.zeros(95, dtype=int)]
    X = np.c_[y + np.random.default_rng(0).normal(0, 0.1, 100), np.arange(100)]
    first = np.arange(10, 15)  # all class 0
    result = active_learning(
        LogisticRegression(),
        X,
        SimulatedOracle(y),
        budget=60,
        batch_size=5,
        initial=first,
        random_state=0,
    )
    before_fit = result.labels_spent[0]
    assert set(y[list(result.queried[:before_fit])]) == {0, 1}
    assert set(y[list(result.queried[: before_fit - 5])]) == {0}


def test_no_evaluation_set_gives_empty_metrics(problem):
    X, y, _, _ = problem
    result = active_learning(LogisticRegression(), X, SimulatedOracle(y), budget=20, random_state=0)
    assert result.accuracy == ()
    assert list(result.to_frame().columns) == ["strategy", "labels_spent"]
    assert result.to_dict()["labels_spent"] == [10, 20]


def test_bad_arguments(problem):
    X, y, Xt, _ = problem
    oracle = SimulatedOracle(y)
    with pytest.raises(ValueError, match="budget must be a positive integer"):
        active_learning(LogisticRegression(), X, oracle, budget=0)
    with pytest.raises(ValueError, match="budget must not exceed the pool size 300"):
        active_learning(LogisticRegression(), X, oracle, budget=301)
    with pytest.raises(ValueError, match="X_test and y_test must be given together"):
        active_learning(LogisticRegression(), X, oracle, budget=20, X_test=Xt)
    with pytest.raises(ValueError, match="initial positions"):
        active_learning(LogisticRegression(), X, oracle, budget=20, initial=np.array([400]))
    with pytest.raises(ValueError, match="found only one class"):
        active_learning(LogisticRegression(), X, SimulatedOracle(np.zeros(300)), budget=20)


def test_a_run_gets_the_learning_curve_and_the_queries(problem, tracking_home):
    X, y, Xt, yt = problem
    with opsloop.start_run("active", capture=False) as run:
        result = active_learning(
            LogisticRegression(),
            X,
            SimulatedOracle(y),
            strategy="entropy",
            budget=30,
            batch_size=10,
            initial=10,
            X_test=Xt,
            y_test=yt,
            random_state=1,
            run=run,
        )
    stored = opsloop.get_run(run.run_id)
    assert history(stored, "labels_spent") == ([0, 1, 2], [10.0, 20.0, 30.0])
    assert history(stored, "accuracy") == ([10, 20, 30], list(result.accuracy))
    assert history(stored, "balanced_accuracy") == ([10, 20, 30], list(result.balanced_accuracy))
    # the last point is the final model's score on the test rows
    assert result.accuracy[-1] == result.estimator.score(Xt, yt)
    assert stored.params == {
        "strategy": "entropy",
        "estimator": "LogisticRegression",
        "budget": "30",
        "batch_size": "10",
        "initial": "10",
        "random_state": "1",
        "n_pool": "300",
    }
    report = json.loads(artifact_bytes(stored, "active_learning.json"))
    assert report["queried"] == list(result.queried) and len(report["queried"]) == 30
    model = skops.io.loads(artifact_bytes(stored, "model.skops"))
    np.testing.assert_array_equal(model.predict_proba(Xt), result.estimator.predict_proba(Xt))


def test_a_classifier_without_predict_proba_is_refused_before_any_label_is_bought():
    from sklearn.datasets import load_breast_cancer
    from sklearn.svm import LinearSVC

    X, y = load_breast_cancer(return_X_y=True)
    oracle = SimulatedOracle(y)
    with pytest.raises(TypeError, match="strategy 'entropy' ranks rows by predict_proba"):
        active_learning(LinearSVC(), X, oracle, budget=30, random_state=0)
    assert oracle.n_answered_ == 0
    # query-by-committee only votes with predict: the same classifier runs
    result = active_learning(LinearSVC(), X, oracle, strategy="qbc", budget=30, random_state=0)
    assert result.labels_spent == (10, 20, 30)


def test_an_evaluation_set_of_unequal_lengths_is_refused_up_front():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    oracle = SimulatedOracle(y)
    with pytest.raises(ValueError, match="one label per row, got 10 rows and 5 labels"):
        active_learning(LogisticRegression(), X, oracle, budget=30, X_test=X[:10], y_test=y[:5])
    assert oracle.n_answered_ == 0
