import json

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from opsloop.analysis.explanation import explain, model_kind
from opsloop.datasets import credit


@pytest.fixture(scope="module")
def loans():
    df = credit(600, seed=2)
    X = df[["age", "salary", "loan_amount", "device", "gender"]]
    return X, df["default"]


def test_tree_model_gets_tree_methods(loans):
    X, y = loans
    numeric = X[["age", "salary", "loan_amount"]]
    model = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(numeric, y)
    result = explain(model, numeric, y, top=2, groups={"money": ["salary", "loan_amount"]})
    assert result.model_kind == "tree"
    assert result.shapley is not None and result.shapley.method == "tree"
    assert result.tree_importances is not None and result.coefficients is None
    # default depends on salary and loan amount (Agrawal rule 9), not on age
    importances = [i.importance for i in result.permutation]
    assert importances == sorted(importances, reverse=True)
    assert result.permutation[-1].feature == "age"
    assert [d.feature for d in result.dependence] == [i.feature for i in result.permutation][:2]
    assert [a.feature for a in result.ale] == [d.feature for d in result.dependence]
    assert result.grouped[0].feature == "money"
    assert 0.5 < result.surrogate.fidelity <= 1.0
    json.dumps(result.to_dict())


def test_linear_pipeline_with_categories(loans):
    X, y = loans
    encoder = ColumnTransformer(
        [("onehot", OneHotEncoder(), ["device", "gender"])],
        remainder=StandardScaler(),
    )
    model = make_pipeline(encoder, LogisticRegression(max_iter=500)).fit(X, y)
    result = explain(model, X, y, top=3)
    assert result.model_kind == "linear"
    assert result.shapley is None  # categorical columns: no model-agnostic Shapley values
    assert {c.feature for c in result.coefficients} >= {
        "remainder__salary",
        "onehot__device_mobile",
    }
    kinds = {a.feature: a.kind for a in result.ale}
    assert set(kinds) == {d.feature for d in result.dependence}
    assert result.local.seed == 0 and len(result.local.weights) == 5
    assert model_kind(model) == "linear"
    d = result.to_dict()
    assert d["tree_importances"] is None and d["shapley"] is None
    json.dumps(d)


def test_without_labels_ranks_by_column_order(loans):
    X, _ = loans
    numeric = X[["age", "salary"]]
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(numeric, numeric["age"] > 40)
    result = explain(model, numeric, top=1)
    assert result.permutation is None
    ranked = np.argsort(-np.asarray(result.shapley.mean_abs))
    assert result.dependence[0].feature == result.shapley.features[ranked[0]] == "age"


def test_bad_input(loans):
    X, _ = loans
    with pytest.raises(ValueError, match="y has 2 rows but X has 600"):
        explain(LogisticRegression(), X, [0, 1])
    with pytest.raises(ValueError, match="top must be an integer >= 0"):
        explain(LogisticRegression(), X, top=-1)
    with pytest.raises(TypeError, match="X must be a pandas DataFrame"):
        explain(LogisticRegression(), X.to_numpy())
    assert model_kind(object()) == "other"


def test_exact_shapley_paths_explain_every_row(loans):
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = loans
    numeric = X[["age", "salary", "loan_amount"]]
    boosted = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(numeric, y)
    result = explain(boosted, numeric, y, top=1)
    assert result.model_kind == "tree" and result.tree_importances is None
    assert (result.shapley.method, result.shapley.output) == ("tree", "log-odds")
    assert result.shapley.values.shape == (600, 3)
    scaled = make_pipeline(StandardScaler(), LogisticRegression()).fit(numeric, y)
    linear = explain(scaled, numeric, y, top=1, shapley_rows=10)
    assert (linear.shapley.method, linear.shapley.output) == ("linear", "log-odds")
    assert linear.shapley.values.shape == (600, 3)  # closed form: no row cap


@pytest.mark.slow
def test_model_agnostic_shapley_explains_a_seeded_sample_of_rows(loans):
    from sklearn.neighbors import KNeighborsClassifier

    from opsloop.analysis.shapley import shapley_values

    X, y = loans
    numeric = X[["age", "salary", "loan_amount"]]
    model = KNeighborsClassifier().fit(numeric, y)
    result = explain(model, numeric, y, top=1, shapley_rows=12, seed=5)
    picked = np.sort(np.random.default_rng(5).choice(600, 12, replace=False))
    expected = shapley_values(model, numeric.iloc[picked].reset_index(drop=True), seed=5)
    assert result.shapley.method == "permutation"
    np.testing.assert_array_equal(result.shapley.values, expected.values)
