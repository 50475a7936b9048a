import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from opsloop.analysis.importance import (
    grouped_permutation_importance,
    linear_coefficients,
    permutation_importance,
    tree_importances,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(8)
    X = pd.DataFrame(
        {"a": rng.normal(size=200), "b": rng.normal(size=200) * 3, "c": rng.normal(size=200)}
    )
    y = 2 * X["a"] + 0.5 * X["b"]
    return X, y


def test_permutation_importance_equals_sklearn(data):
    X, y = data
    model = LinearRegression().fit(X, y)
    got = {i.feature: i for i in permutation_importance(model, X, y, n_repeats=4, seed=3)}
    ref = sklearn_permutation_importance(model, X, y, n_repeats=4, random_state=3)
    for j, column in enumerate(X.columns):
        assert got[column].importance == pytest.approx(ref.importances_mean[j], abs=1e-12)
        assert got[column].std == pytest.approx(ref.importances_std[j], abs=1e-12)


def test_grouped_permutation_importance_by_hand(data):
    X, y = data
    model = LinearRegression().fit(X, y)
    result = grouped_permutation_importance(
        model, X, y, {"ab": ["a", "b"], "c": ["c"]}, n_repeats=3, seed=2
    )
    by_name = {i.feature: i for i in result}
    rng = np.random.default_rng(2)
    drops = []
    for order in [rng.permutation(200) for _ in range(3)]:
        shuffled = X.copy()
        shuffled[["a", "b"]] = X[["a", "b"]].to_numpy()[order]
        drops.append(1.0 - r2_score(y, model.predict(shuffled)))
    assert by_name["ab"].importance == pytest.approx(np.mean(drops), abs=1e-12)
    assert by_name["ab"].std == pytest.approx(np.std(drops), abs=1e-12)
    assert by_name["c"].importance == pytest.approx(0.0, abs=1e-12)
    assert result[0].feature == "ab"
    with pytest.raises(ValueError, match="group 'x' must name columns of X; unknown: \\['z'\\]"):
        grouped_permutation_importance(model, X, y, {"x": ["z"]})


def test_linear_coefficients_and_standardised_effects(data):
    X, y = data
    result = {c.feature: c for c in linear_coefficients(LinearRegression().fit(X, y), X)}
    assert result["a"].coefficient == pytest.approx(2.0)
    assert result["b"].standardised_effect == pytest.approx(0.5 * X["b"].std(ddof=1))
    assert result["c"].coefficient == pytest.approx(0.0, abs=1e-9)


def test_linear_coefficients_through_a_pipeline():
    X = pd.DataFrame({"colour": ["r", "g", "b", "r", "g", "b"] * 5, "x": np.arange(30.0)})
    y = (X["x"] > 14).astype(int)
    encoder = ColumnTransformer([("onehot", OneHotEncoder(), ["colour"])], remainder="passthrough")
    model = make_pipeline(encoder, LogisticRegression()).fit(X, y)
    result = linear_coefficients(model, X)
    names = {c.feature for c in result}
    assert names == {"onehot__colour_b", "onehot__colour_g", "onehot__colour_r", "remainder__x"}
    coef = dict(zip(model[:-1].get_feature_names_out(), model[-1].coef_[0], strict=True))
    x_effect = next(c for c in result if c.feature == "remainder__x")
    assert x_effect.coefficient == pytest.approx(coef["remainder__x"])
    assert x_effect.standardised_effect == pytest.approx(coef["remainder__x"] * X["x"].std())


def test_tree_importances_and_errors(data):
    X, y = data
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y)
    result = tree_importances(model, X)
    assert [i.importance for i in result] == sorted(model.feature_importances_, reverse=True)
    with pytest.raises(TypeError, match="has no feature_importances_"):
        tree_importances(LinearRegression().fit(X, y), X)
    with pytest.raises(TypeError, match="has no linear coefficients"):
        linear_coefficients(model, X)
