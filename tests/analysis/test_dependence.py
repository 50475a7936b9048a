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


def test_equals_sklearn_on_sampled_rows():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, X["a"] ** 2)
    curve = partial_dependence(model, X, "a", grid_resolution=5, max_ice_rows=100, seed=3)
    pick = np.sort(np.random.default_rng(3).choice(500, 100, replace=False))
    ref = sklearn_partial_dependence(model, X.iloc[pick], ["a"], kind="both", grid_resolution=5)
    np.testing.assert_allclose(curve.average, ref["average"][0], atol=1e-12)
    np.testing.assert_allclose(curve.individual, ref["individual"][0], atol=1e-12)
    assert curve.to_frame().shape == (5, 2)


def test_bad_input():
    with pytest.raises(ValueError, match="X has no column 'z'"):
        partial_dependence(LinearRegression(), pd.DataFrame({"a": [1.0]}), "z")
