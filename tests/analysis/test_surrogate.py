import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

from opsloop.analysis.surrogate import global_surrogate, local_surrogate


class Formula(RegressorMixin, BaseEstimator):
    def __init__(self, function=None):
        self.function = function

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        return np.asarray(self.function(X), dtype=float)


def test_global_surrogate_fidelity_equals_tree_refit():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"a": rng.normal(size=300), "b": rng.normal(size=300), "c": rng.choice(["u", "v"], 300)}
    )
    y = ((X["a"] + X["b"] > 0) ^ (X["c"] == "v")).astype(int)
    encoder = ColumnTransformer([("onehot", OneHotEncoder(), ["c"])], remainder="passthrough")
    model = make_pipeline(encoder, RandomForestClassifier(n_estimators=20, random_state=0))
    model.fit(X, y)
    labels = model.predict(X)
    tree = DecisionTreeClassifier(max_depth=2, random_state=0)
    design = np.column_stack([X["a"], X["b"], X["c"] == "u", X["c"] == "v"]).astype(float)
    expected = accuracy_score(labels, tree.fit(design, labels).predict(design))
    surrogate = global_surrogate(model, X, max_depth=2)
    assert surrogate.fidelity_metric == "accuracy"
    assert surrogate.fidelity == pytest.approx(expected, abs=1e-12)
    assert sum(n for _, n, _ in surrogate.leaves) == 300


def test_global_surrogate_of_a_step_is_exact():
    X = pd.DataFrame({"x": np.arange(100.0)})
    surrogate = global_surrogate(Formula(lambda rows: (rows["x"] > 60) * 5.0), X, max_depth=1)
    assert (surrogate.fidelity_metric, surrogate.fidelity) == ("r2", 1.0)
    assert surrogate.leaves == (("x <= 60.5", 61, "0"), ("x > 60.5", 39, "5"))


def test_local_surrogate_recovers_linear_slopes_and_is_deterministic():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(
        {"a": rng.normal(size=100), "b": rng.normal(size=100) * 2, "c": rng.choice(["p", "q"], 100)}
    )
    model = Formula(lambda rows: 3 * rows["a"] - rows["b"] + 4 * (rows["c"] == "q"))
    local = local_surrogate(model, X, 5, seed=7, alpha=1e-12)
    weights = {w.feature: w.weight for w in local.weights}
    # weights are per standard deviation (population sd) of each number
    assert weights["a"] == pytest.approx(3 * X["a"].std(ddof=0), abs=1e-6)
    assert weights["b"] == pytest.approx(-1 * X["b"].std(ddof=0), abs=1e-6)
    # keeping the row's category: +4 if it is q, -4 if it is p
    assert weights["c"] == pytest.approx(4.0 if X["c"].iloc[5] == "q" else -4.0, abs=1e-6)
    assert local.score == pytest.approx(1.0, abs=1e-9)
    assert local.prediction == pytest.approx(float(model.predict(X.iloc[[5]])[0]))
    assert local == local_surrogate(model, X, 5, seed=7, alpha=1e-12)
    assert local != local_surrogate(model, X, 5, seed=8, alpha=1e-12)


def test_bad_input():
    X = pd.DataFrame({"a": np.arange(5.0)})
    model = LinearRegression().fit(X, X["a"])
    with pytest.raises(ValueError, match="row must be a position in X \\(0 to 4\\)"):
        local_surrogate(model, X, 5)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 10"):
        local_surrogate(model, X, 0, n_samples=3)
    with pytest.raises(ValueError, match="max_depth must be an integer >= 1"):
        global_surrogate(model, X, max_depth=0)
