import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

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
    assert result.output == "probability"
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
    # the same function behind a scaler: the same closed form, equal to the model-agnostic
    # explainer's values on the same background
    piped = make_pipeline(StandardScaler(), LinearRegression()).fit(X, 3 * X["a"] - X["b"])
    through = shapley_values(piped, rows, background=50, seed=0)
    assert through.method == "linear"
    np.testing.assert_allclose(through.values, result.values, atol=1e-9)
    agnostic = shap.PermutationExplainer(
        lambda z: piped.predict(pd.DataFrame(z, columns=X.columns)),
        shap.maskers.Independent(rows.to_numpy(), max_samples=50),
        seed=0,
    )(rows.to_numpy(), silent=True)
    np.testing.assert_allclose(through.values, agnostic.values, atol=1e-9)


def test_linear_classifier_behind_scalers_is_shaps_linear_explainer_on_the_log_odds(data):
    X, y = data
    X = X.assign(c=np.arange(len(X)) % 7)
    model = make_pipeline(MinMaxScaler(), StandardScaler(), LogisticRegression()).fit(X, y)
    result = shapley_values(model, X, background=40, seed=3)
    assert (result.method, result.output) == ("linear", "log-odds")
    picked = np.random.default_rng(3).choice(len(X), 40, replace=False)
    head = model[:-1]
    expected = shap.LinearExplainer(
        model[-1], shap.maskers.Independent(head.transform(X.iloc[picked]), max_samples=40)
    )(head.transform(X))
    np.testing.assert_array_equal(result.values, expected.values)
    # additive: the values and the base value make up the decision function
    np.testing.assert_allclose(
        result.base_value + result.values.sum(axis=1), model.decision_function(X), atol=1e-12
    )
    first = shapley_values(model, X, background=40, seed=3, target_class=0)
    np.testing.assert_array_equal(first.values, -result.values)


@pytest.mark.slow
def test_linear_classifier_equals_the_permutation_explainer_on_its_log_odds(data):
    X, y = data
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    rows = X.iloc[:15]
    result = shapley_values(model, rows, background=15, seed=0)
    agnostic = shap.PermutationExplainer(
        lambda z: model.decision_function(pd.DataFrame(z, columns=X.columns)),
        shap.maskers.Independent(rows.to_numpy(), max_samples=15),
        seed=0,
    )(rows.to_numpy(), silent=True)
    np.testing.assert_allclose(result.values, agnostic.values, atol=1e-9)


def test_histogram_gradient_boosting_uses_the_tree_explainer(data):
    X, y = data
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    result = shapley_values(model, X)
    assert (result.method, result.output) == ("tree", "log-odds")
    expected = shap.TreeExplainer(model)(X)
    np.testing.assert_array_equal(result.values, expected.values)
    np.testing.assert_allclose(
        result.base_value + result.values.sum(axis=1), model.decision_function(X), atol=1e-9
    )
    # categorical splits are not read by TreeExplainer: those models are not tree models here
    cats = X.assign(k=pd.Categorical(np.where(X["a"] > 0, "p", "n")))
    with_categories = HistGradientBoostingClassifier(
        max_iter=5, categorical_features="from_dtype"
    ).fit(cats, y)
    assert is_tree_model(model) and not is_tree_model(with_categories)


def test_model_agnostic_needs_numbers():
    X = pd.DataFrame({"a": [1.0, 2.0], "c": ["x", "y"]})
    with pytest.raises(TypeError, match="need numeric columns; encode \\['c'\\]"):
        shapley_values(LinearRegression(), X)
    assert is_tree_model(RandomForestClassifier()) and not is_tree_model(LinearRegression())
