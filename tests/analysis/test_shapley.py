import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from opsloop.analysis.shapley import is_tree_model, shapley_values


@pytest.fixture
def data():
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150)})
    return X, (X["a"] - 0.5 * X["b"] > 0).astype(int)


def test_tree_values_add_up_to_probability(data):
    X, y = data
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    result = shapley_values(model, X)
    assert result.method == "tree" and result.values.shape == (150, 2)
    np.testing.assert_allclose(
        result.base_value + result.values.sum(axis=1), model.predict_proba(X)[:, 1], atol=1e-9
    )
    np.testing.assert_allclose(result.mean_abs, np.abs(result.values).mean(axis=0), atol=1e-15)
    first = shapley_values(model, X, target_class=0)
    np.testing.assert_allclose(
        first.base_value + first.values.sum(axis=1), model.predict_proba(X)[:, 0], atol=1e-9
    )


def test_tree_regressor_values_add_up(data):
    X, _ = data
    model = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(X, X["a"] * 2)
    result = shapley_values(model, X)
    np.testing.assert_allclose(
        result.base_value + result.values.sum(axis=1), model.predict(X), atol=1e-9
    )
    assert result.mean_abs[0] > 10 * result.mean_abs[1]


@pytest.mark.slow
def test_linear_regressor_values_are_exact_and_equal_the_permutation_explainers(data):
    # shap compiles its numba code on first use: several seconds
    X, _ = data
    model = LinearRegression().fit(X, 3 * X["a"] - X["b"])
    rows = X.iloc[:20]
    result = shapley_values(model, rows, background=50, seed=0)
    assert result.method == "linear"
    # for a linear model with independent masking the Shapley value is coef * (x - mean),
    # the mean over the background: here all 20 rows, since fewer than ``background``
    expected = model.coef_ * (rows.to_numpy() - rows.to_numpy().mean(axis=0))
    np.testing.assert_allclose(result.values, expected, atol=1e-9)
    assert result.base_value == pytest.approx(model.predict(rows).mean(), abs=1e-9)
    # the same function behind a pipeline goes to the model-agnostic explainer
    piped = make_pipeline(StandardScaler(), LinearRegression()).fit(X, 3 * X["a"] - X["b"])
    agnostic = shapley_values(piped, rows, background=50, seed=0)
    assert agnostic.method == "permutation"
    np.testing.assert_allclose(agnostic.values, result.values, atol=1e-9)


def test_model_agnostic_needs_numbers():
    X = pd.DataFrame({"a": [1.0, 2.0], "c": ["x", "y"]})
    with pytest.raises(TypeError, match="need numeric columns; encode \\['c'\\]"):
        shapley_values(LinearRegression(), X)
    assert is_tree_model(RandomForestClassifier()) and not is_tree_model(LinearRegression())
