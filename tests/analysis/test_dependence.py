import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.inspection import partial_dependence as sklearn_partial_dependence
from sklearn.linear_model import LinearRegression

from opsloop.analysis.dependence import partial_dependence


def test_linear_model_curve_by_hand():
    X = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0) % 4})
    model = LinearRegression().fit(X, 2 * X["a"] + X["b"])
    curve = partial_dependence(model, X, "a", grid_resolution=4)
    grid = np.array(curve.grid)
    # average over rows of 2 * a_grid + b: 2 * grid + mean(b)
    np.testing.assert_allclose(curve.average, 2 * grid + X["b"].mean(), atol=1e-9)
    np.testing.assert_allclose(curve.individual[3], 2 * grid + X["b"].iloc[3], atol=1e-9)


def test_equals_sklearn_on_all_rows_with_ice_on_sampled_rows():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, X["a"] ** 2)
    curve = partial_dependence(model, X, "a", grid_resolution=5, max_ice_rows=100, seed=3)
    pick = np.sort(np.random.default_rng(3).choice(500, 100, replace=False))
    ref = sklearn_partial_dependence(model, X, ["a"], kind="both", grid_resolution=5)
    np.testing.assert_array_equal(curve.grid, ref["grid_values"][0])
    np.testing.assert_allclose(curve.average, ref["average"][0], atol=1e-12)
    np.testing.assert_allclose(curve.individual, ref["individual"][0][pick], atol=1e-12)
    assert curve.to_frame().shape == (5, 2)


def test_default_equals_sklearn_on_diabetes():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    model = Ridge(alpha=1.0).fit(X, y)
    ref = sklearn_partial_dependence(model, X, ["bmi"], grid_resolution=10, kind="both")
    curve = partial_dependence(model, X, "bmi", grid_resolution=10)  # 200 ICE rows of 442
    np.testing.assert_array_equal(curve.grid, ref["grid_values"][0])
    np.testing.assert_allclose(curve.average, ref["average"][0], rtol=1e-12)
    pick = np.sort(np.random.default_rng(0).choice(len(X), 200, replace=False))
    np.testing.assert_allclose(curve.individual, ref["individual"][0][pick], rtol=1e-12)


def test_large_frames_go_to_the_model_in_bounded_calls(monkeypatch):
    from opsloop.analysis import dependence

    rng = np.random.default_rng(4)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    calls = []

    class Counting(LinearRegression):
        def predict(self, X):
            calls.append(len(X))
            return super().predict(X)

    model = Counting().fit(X, X["a"] * 3 - X["b"])
    monkeypatch.setattr(dependence, "MAX_BATCH_ROWS", 1000)
    curve = partial_dependence(model, X, "a", grid_resolution=7, max_ice_rows=20)
    assert calls == [900, 900, 300]  # 3 grid points of 300 rows a call, then the last one
    ref = sklearn_partial_dependence(
        LinearRegression().fit(X, X["a"] * 3 - X["b"]), X, ["a"], grid_resolution=7
    )
    np.testing.assert_allclose(curve.average, ref["average"][0], rtol=1e-12)
    assert curve.individual.shape == (20, 7)


def test_bad_input():
    with pytest.raises(ValueError, match="X has no column 'z'"):
        partial_dependence(LinearRegression(), pd.DataFrame({"a": [1.0]}), "z")


def _sklearn_curve(model, rows, feature, categorical=False, grid_resolution=20):
    return sklearn_partial_dependence(
        model,
        rows,
        [feature],
        kind="both",
        grid_resolution=grid_resolution,
        categorical_features=[feature] if categorical else None,
    )


def test_one_predict_call_and_sklearns_numbers_bit_for_bit():
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(2)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=300),
            "b": rng.normal(size=300),
            "c": rng.choice(["x", "y", "z"], 300),
            "d": rng.integers(0, 4, 300).astype(float),  # fewer values than grid points
        }
    )
    y = (X["a"] + (X["c"] == "x") + rng.normal(0, 0.5, 300) > 0.5).astype(int)
    numeric = X[["a", "b", "d"]]
    boosted = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(numeric, y)
    for feature in ("a", "d"):
        curve = partial_dependence(boosted, numeric, feature, max_ice_rows=120, seed=1)
        pick = np.sort(np.random.default_rng(1).choice(300, 120, replace=False))
        ref = _sklearn_curve(boosted, numeric, feature)
        np.testing.assert_array_equal(curve.grid, ref["grid_values"][0])
        np.testing.assert_array_equal(curve.average, ref["average"][0])
        np.testing.assert_array_equal(curve.individual, ref["individual"][0][pick])
    encode = make_column_transformer(
        (OneHotEncoder(), ["c"]), remainder=StandardScaler(), verbose_feature_names_out=False
    )
    piped = make_pipeline(encode, LogisticRegression()).fit(X, y)
    curve = partial_dependence(piped, X, "c", max_ice_rows=300)
    ref = _sklearn_curve(piped, X, "c", categorical=True)
    assert curve.grid == ("x", "y", "z") == tuple(ref["grid_values"][0])
    np.testing.assert_array_equal(curve.average, ref["average"][0])
    np.testing.assert_array_equal(curve.individual, ref["individual"][0])
    # the model sees every grid point in one call
    calls = []

    class Counting(LogisticRegression):
        def predict_proba(self, X):
            calls.append(len(X))
            return super().predict_proba(X)

    counted = Counting().fit(numeric, y)
    partial_dependence(counted, numeric, "a", max_ice_rows=50)
    assert calls == [300 * 20]
