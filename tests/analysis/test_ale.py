import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression, LogisticRegression

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


def linear_data(n: int = 2_000, seed: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.lognormal(size=n)
    X = pd.DataFrame({"x": x, "w": 0.5 * x + rng.normal(size=n), "v": rng.uniform(size=n)})
    y = 2.5 * X["x"] - 1.5 * X["w"] + 4.0 * X["v"] + rng.normal(size=n)
    return X, LinearRegression().fit(X, y)


def linear_ale_by_hand(slope: float, x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """A linear model's ALE: slope · (edge - mean over rows of their interval's midpoint).

    Each interval's local effect is slope · its width, so the running sum at edge k is
    slope · (edge_k - edge_0); centring subtracts the row average of the interval means.
    """
    interval = np.clip(np.searchsorted(edges, x, side="left"), 1, len(edges) - 1)
    midpoints = (edges[interval - 1] + edges[interval]) / 2
    return slope * (edges - midpoints.mean())


def test_linear_model_ale_is_its_coefficient_centred():
    X, model = linear_data()
    for j, feature in enumerate(X.columns):
        result = ale(model, X, feature, bins=15)
        edges = np.quantile(X[feature], np.linspace(0, 1, 16))
        np.testing.assert_array_equal(result.edges, edges)
        expected = linear_ale_by_hand(model.coef_[j], X[feature].to_numpy(), edges)
        np.testing.assert_allclose(result.values, expected, rtol=0, atol=1e-12)
        assert sum(result.counts) == len(X) and result.counts[0] == 0


def test_given_grid_is_used_as_the_interval_edges():
    X, model = linear_data()
    x = X["x"].to_numpy()
    grid = np.concatenate([[x.min()], np.sort(x)[[100, 700, 1500]], [x.max() + 1.0]])
    result = ale(model, X, "x", grid=grid)
    np.testing.assert_array_equal(result.edges, grid)
    counts = [0, 101, 600, 800, 499]  # (x[i-1], x[i]] of the sorted values, minimum included
    assert list(result.counts) == counts
    expected = linear_ale_by_hand(model.coef_[0], x, grid)
    np.testing.assert_allclose(result.values, expected, rtol=0, atol=1e-12)
    assert result.to_dict()["edges"] == [float(g) for g in grid]


def test_empty_interval_of_a_grid_adds_nothing():
    # f = x² on x = 0..3, edges [0, 1, 1.5, 2, 3]: (1, 1.5] holds no row.
    # effects: rows 0, 1 → 1; none → 0; row 2 → 4 - 2.25 = 1.75; row 3 → 9 - 4 = 5
    # running sum [0, 1, 1, 2.75, 7.75]; centring (2 · 0.5 + 1 · 1.875 + 1 · 5.25) / 4
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    result = ale(Formula(lambda X: X["x"] ** 2), X, "x", grid=[0.0, 1.0, 1.5, 2.0, 3.0])
    assert result.counts == (0, 2, 0, 1, 1)
    np.testing.assert_allclose(
        result.values, [-2.03125, -1.03125, -1.03125, 0.71875, 5.71875], atol=1e-12
    )


def test_integer_column_with_fractional_edges_is_evaluated_at_the_edges():
    # x = 0..9 as integers; bins=2 cuts at 4.5, which the model must see as 4.5, not 4
    X = pd.DataFrame({"x": np.arange(10)})
    seen = []

    def square(frame):
        seen.append(frame["x"].dtype)
        return frame["x"] ** 2

    result = ale(Formula(square), X, "x", bins=2)
    assert result.edges == (0.0, 4.5, 9.0) and seen == [np.float64]
    # rows 0..4 in [0, 4.5]: effect 4.5² = 20.25; rows 5..9 in (4.5, 9]: 81 - 20.25 = 60.75
    # running sum [0, 20.25, 81]; centring (5 · 10.125 + 5 · 50.625) / 10 = 30.375
    np.testing.assert_allclose(result.values, [-30.375, -10.125, 50.625], atol=1e-12)
    # whole edges keep the integer dtype: rows 0..3 in [0, 3] gain 9, rows 4..9 gain 72;
    # running sum [0, 9, 81]; centring (4 · 4.5 + 6 · 45) / 10 = 28.8
    whole = ale(Formula(square), X, "x", grid=[0, 3, 9])
    assert seen[-1] == X["x"].dtype
    np.testing.assert_allclose(whole.values, [-28.8, -19.8, 52.2], atol=1e-12)


def test_bad_grid():
    X = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    model = Formula(lambda X: X["x"])
    with pytest.raises(ValueError, match="grid must be finite and strictly increasing"):
        ale(model, X, "x", grid=[1.0, 1.0, 3.0])
    with pytest.raises(ValueError, match="at least 2 edges"):
        ale(model, X, "x", grid=[1.0])
    with pytest.raises(ValueError, match=r"grid must cover the feature's values: it spans \[1.5"):
        ale(model, X, "x", grid=[1.5, 3.0])
    with pytest.raises(ValueError, match="grid applies to numeric features only; 'c' is"):
        ale(model, X, "c", grid=[0.0, 1.0])
    with pytest.raises(ValueError, match="grid must be numbers"):
        ale(model, X, "x", grid=["a", "b"])


def test_nullable_dtypes_keep_their_dtype():
    # pandas' nullable Float64 and Int64 columns: the model sees the edges in that dtype
    X = pd.DataFrame(
        {
            "x": pd.array(np.arange(10.0), dtype="Float64"),
            "k": pd.array(np.arange(10), dtype="Int64"),
        }
    )
    seen = []

    def linear(frame):
        seen.append((frame["x"].dtype, frame["k"].dtype))
        return 2 * frame["x"].to_numpy(float) + frame["k"].to_numpy(float)

    result = ale(Formula(linear), X, "x", grid=[0.0, 3.0, 9.0])
    np.testing.assert_allclose(result.values, [-8.4, -2.4, 9.6], atol=1e-12)
    assert seen[-1] == (pd.Float64Dtype(), pd.Int64Dtype())
    ale(Formula(linear), X, "k", grid=[0, 3, 9])
    assert seen[-1] == (pd.Float64Dtype(), pd.Int64Dtype())
