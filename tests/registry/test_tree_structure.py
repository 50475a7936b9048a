"""Tree models whose node arrays were tampered with in their skops file are refused at
load, naming what is wrong, before anything predicts with them (scikit-learn's compiled
code would follow the indices out of bounds); every tree model scikit-learn grows itself
loads and answers as before."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    IsolationForest,
    RandomForestClassifier,
)
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from opsloop.registry.flavors import CorruptModelError, load_model_bytes


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:300], y[:300]


def _loaded(model, trusted=()):
    return load_model_bytes(
        skops.io.dumps(model), "sklearn", {"format": "skops"}, trusted_types=trusted
    )


# A boosting model with a categorical feature holds its column check as a function: the
# user names it to load the model (the allow-list has no functions); the trees are still
# checked.
CATEGORICAL_CONSENT = ("functools.partial", "sklearn.utils.validation.check_array")


@pytest.mark.parametrize(
    "model",
    [
        DecisionTreeClassifier(random_state=0),
        RandomForestClassifier(n_estimators=5, random_state=0),
        ExtraTreesClassifier(n_estimators=5, random_state=0),
        GradientBoostingClassifier(n_estimators=5, random_state=0),
        HistGradientBoostingClassifier(max_iter=5, random_state=0),
        AdaBoostClassifier(n_estimators=5, random_state=0),
        BaggingClassifier(
            DecisionTreeClassifier(), n_estimators=4, max_features=0.5, random_state=0
        ),
        IsolationForest(n_estimators=5, random_state=0),
        make_pipeline(PCA(5), DecisionTreeClassifier(random_state=0)),
    ],
    ids=lambda m: type(m).__name__,
)
def test_grown_trees_load_and_answer_as_before(data, model):
    X, y = data
    model.fit(X, y)
    assert np.array_equal(_loaded(model).predict(X), model.predict(X))


def _with_a_category(X):
    # The quartile of "worst perimeter", a strong feature, as a category: splits use it.
    quartile = np.digitize(X[:, 22], np.quantile(X[:, 22], [0.25, 0.5, 0.75]))
    return np.column_stack([X[:, :5], quartile])


def test_categorical_boosting_loads_and_answers_as_before(data):
    X, y = data
    X = _with_a_category(X)
    model = HistGradientBoostingClassifier(
        max_iter=5, categorical_features=[5], random_state=0
    ).fit(X, y)
    assert any(p.nodes["is_categorical"].any() for stage in model._predictors for p in stage)
    assert np.array_equal(_loaded(model, CATEGORICAL_CONSENT).predict(X), model.predict(X))


def _tampered_tree(data, field, value, node=0):
    X, y = data
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    state = model.tree_.__getstate__()
    state["nodes"][field][node] = value
    model.tree_.__setstate__(state)
    return model


@pytest.mark.parametrize(
    ("field", "value", "node", "said"),
    [
        ("left_child", 10**6, 0, "split whose child is not a later node"),
        ("right_child", 0, 0, "split whose child is not a later node"),  # a cycle
        ("left_child", -7, 0, "split whose child is not a later node"),
        ("feature", 30, 0, "splits on feature 30 of its 30"),
        ("feature", -3, 0, "splits on feature -3 of its 30"),
    ],
)
def test_a_tampered_tree_is_refused(data, field, value, node, said):
    with pytest.raises(CorruptModelError, match=said):
        _loaded(_tampered_tree(data, field, value, node))


def test_a_leaf_with_a_child_is_refused(data):
    model = _tampered_tree(data, "left_child", 1)
    leaf = int(np.flatnonzero(model.tree_.children_left == -1)[0])
    state = model.tree_.__getstate__()
    state["nodes"]["left_child"][0] = 1  # the root as it was
    state["nodes"]["right_child"][leaf] = 1
    model.tree_.__setstate__(state)
    with pytest.raises(CorruptModelError, match=f"leaf has a child \\(node {leaf}\\)"):
        _loaded(model)


def test_a_forest_tree_wider_than_the_forest_is_refused(data):
    X, y = data
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    wide = DecisionTreeRegressor(random_state=0).fit(np.hstack([X, X]), y)
    forest.estimators_[1] = wide
    with pytest.raises(CorruptModelError, match="takes 60 features where the ensemble takes 30"):
        _loaded(forest)
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    tree.n_features_in_ = 10  # its tree still reads 30 columns
    with pytest.raises(CorruptModelError, match="takes 30 features where its model takes 10"):
        _loaded(tree)


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("left", 10**4, "split whose child is not a later node"),
        ("right", 0, "split whose child is not a later node"),
        ("feature_idx", 31, "splits on feature 31 of its model's 30"),
    ],
)
def test_a_tampered_boosting_tree_is_refused(data, field, value, said):
    X, y = data
    model = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y)
    model._predictors[1][0].nodes[field][0] = value
    with pytest.raises(CorruptModelError, match=said):
        _loaded(model)


def test_a_tampered_categorical_bitset_is_refused(data):
    X, y = data
    X = _with_a_category(X)
    model = HistGradientBoostingClassifier(
        max_iter=5, categorical_features=[5], random_state=0
    ).fit(X, y)
    predictor = next(
        p for stage in model._predictors for p in stage if p.nodes["is_categorical"].any()
    )
    node = int(np.flatnonzero(predictor.nodes["is_categorical"])[0])
    predictor.nodes["bitset_idx"][node] = 99
    with pytest.raises(CorruptModelError, match=f"names bitset 99 of its .* \\(node {node}\\)"):
        _loaded(model, CATEGORICAL_CONSENT)
