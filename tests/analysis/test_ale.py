import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LogisticRegression

from opsloop.analysis.ale import ale


class Formula(RegressorMixin, BaseEstimator):
    """A fixed function of the columns, so the test knows the model exactly."""

    def __init__(self, function=None):
        self.function = function

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        return np.asarray(self.function(X), dtype=float)


def test_numeric_ale_by_hand():
    # f = x**2 on x = 0..4, two intervals at quantiles [0, 2, 4]:
    # rows 0, 1, 2 lie in (0, 2] (the minimum joins the first), effect f(2) - f(0) = 4;
    # rows 3, 4 lie in (2, 4], effect f(4) - f(2) = 12; running sum [0, 4, 16];
    # centring: (3 * (0 + 4) / 2 + 2 * (4 + 16) / 2) / 5 = 5.2
    X = pd.DataFrame({"x": np.arange(5.0), "other": np.ones(5)})
    result = ale(Formula(lambda X: X["x"] ** 2), X, "x", bins=2)
    assert result.kind == "numeric"
    assert result.grid == ("0", "2", "4")
    assert result.counts == (0, 3, 2)
    np.testing.assert_allclose(result.values, [-5.2, -1.2, 10.8], atol=1e-12)


def test_numeric_ale_ignores_correlated_feature_and_is_additive():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    X = pd.DataFrame({"x": x, "w": x + 0.01 * rng.normal(size=500)})
    result = ale(Formula(lambda X: 3 * X["x"] + np.sin(X["w"])), X, "x", bins=8)
    edges = np.array([float(g) for g in result.grid])
    values = np.array(result.values)
    # a linear effect of slope 3: ALE differences between edges equal 3 * edge differences
    np.testing.assert_allclose(np.diff(values), 3 * np.diff(edges), rtol=1e-4)


def test_categorical_ale_by_hand():
    # f = {a: 0, b: 1, c: 5}[c] + x; a: 1 row, b: 2 rows, c: 1 row
    # a|b: rows of a move up (+1), rows of b move down (+1 each): 3 / 3 = 1
    # b|c: rows of b move up (+4 each), the row of c moves down (+4): 12 / 3 = 4
    # running sum [0, 1, 5], centred by counts: (0 + 2 + 5) / 4 = 1.75
    X = pd.DataFrame({"c": pd.Categorical(["b", "a", "c", "b"]), "x": [0.0, 1.0, 2.0, 3.0]})
    lookup = {"a": 0.0, "b": 1.0, "c": 5.0}
    model = Formula(lambda X: X["c"].astype(str).map(lookup).to_numpy(float) + X["x"])
    result = ale(model, X, "c")
    assert result.kind == "categorical"
    assert result.grid == ("a", "b", "c")
    assert result.counts == (1, 2, 1)
    np.testing.assert_allclose(result.values, [-1.75, -0.75, 3.25], atol=1e-12)
    # strings work the same, in sorted order
    X2 = X.assign(c=X["c"].astype(str).astype(object))
    np.testing.assert_allclose(ale(model, X2, "c").values, [-1.75, -0.75, 3.25], atol=1e-12)


def test_classifier_effect_is_on_probability():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x": rng.normal(size=300)})
    y = (X["x"] + 0.3 * rng.normal(size=300) > 0).astype(int)
    result = ale(LogisticRegression().fit(X, y), X, "x", bins=5)
    values = np.array(result.values)
    assert np.all(np.diff(values) > 0)
    assert values[-1] - values[0] < 1.0


def test_bad_input():
    X = pd.DataFrame({"x": [1.0, None]})
    model = Formula(lambda X: X["x"])
    with pytest.raises(ValueError, match="column 'x' holds missing values"):
        ale(model, X, "x")
    with pytest.raises(ValueError, match="X has no column 'y'"):
        ale(model, X, "y")
    with pytest.raises(ValueError, match="bins must be an integer >= 1"):
        ale(model, X.fillna(0), "x", bins=0)
    with pytest.raises(TypeError, match="model must have a predict method"):
        ale(object(), X.fillna(0), "x")
