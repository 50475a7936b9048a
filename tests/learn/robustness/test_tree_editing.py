"""Model editing for trees: inside the region the override, outside exactly the old answers."""

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from opsloop.errors import InvalidArgumentError
from opsloop.learn.robustness.tree_editing import (
    TreeRegion,
    float32_below,
    leaf_rule,
    override_region,
)
from opsloop.registry.tree_structure import tree_problem


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y


def _with_missing(X: np.ndarray) -> np.ndarray:
    """X with every 7th row missing feature 20 and every 11th missing feature 27."""
    X = X.copy()
    X[::7, 20] = np.nan
    X[::11, 27] = np.nan
    return X


# The rule, by hand, as the trees read the data: float32, NaN outside.
def _cancer_inside(X: np.ndarray) -> np.ndarray:
    X32 = X.astype(np.float32).astype(np.float64)
    return (X32[:, 20] > 16.0) & (X32[:, 27] <= 0.15) & (X32[:, 27] > 0.05)


CANCER_RULE = "x20 > 16 and 0.05 < x27 <= 0.15"


@pytest.mark.parametrize(
    "make",
    [
        lambda: DecisionTreeClassifier(random_state=0),
        lambda: RandomForestClassifier(n_estimators=20, random_state=0),
        lambda: ExtraTreesClassifier(n_estimators=20, random_state=0),
    ],
    ids=["tree", "forest", "extra-trees"],
)
def test_classifier_answers_the_override_inside_and_as_before_outside(cancer, make):
    X, y = cancer
    model = make().fit(X[:400], y[:400])
    rows = _with_missing(X)
    before_labels, before_proba = model.predict(rows), model.predict_proba(rows)
    before_leaves = model.apply(rows)
    edit = override_region(model, 0, where=CANCER_RULE)
    inside = _cancer_inside(rows)
    assert 20 < inside.sum() < len(rows) - 20
    assert (edit.model.predict(rows)[inside] == 0).all()
    assert (edit.model.predict_proba(rows)[inside] == [1.0, 0.0]).all()
    # the region flips some answers, else the test would prove nothing
    assert (before_labels[inside] == 1).sum() > 10
    # outside: bit for bit the same probabilities, and the same leaves
    np.testing.assert_array_equal(edit.model.predict_proba(rows)[~inside], before_proba[~inside])
    # each row outside lands in its old leaf, or in a leaf added where its old one was cut
    after_leaves = edit.model.apply(rows)
    counts = np.array([t.tree_.node_count for t in getattr(model, "estimators_", [model])])
    moved = (after_leaves != before_leaves).reshape(len(rows), -1)[~inside]
    assert (
        after_leaves.reshape(len(rows), -1)[~inside][moved]
        >= np.broadcast_to(counts, moved.shape)[moved]
    ).all()
    # the model given is untouched
    np.testing.assert_array_equal(model.predict_proba(rows), before_proba)
    assert tree_problem(edit.model) is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: DecisionTreeRegressor(random_state=0),
        lambda: RandomForestRegressor(n_estimators=20, random_state=0),
        lambda: ExtraTreesRegressor(n_estimators=20, random_state=0),
    ],
    ids=["tree", "forest", "extra-trees"],
)
def test_regressor_answers_the_override_inside_and_as_before_outside(diabetes, make):
    X, y = diabetes
    model = make().fit(X[:300], y[:300])
    rule = "x2 > 0.02 and x8 <= 0.03 and x3 >= -0.01"
    X32 = X.astype(np.float32).astype(np.float64)
    inside = (X32[:, 2] > 0.02) & (X32[:, 8] <= 0.03) & (X32[:, 3] >= np.float32(-0.01))
    assert 10 < inside.sum() < len(X) - 10
    before = model.predict(X)
    edited = override_region(model, 400.0, where=rule).model
    after = edited.predict(X)
    np.testing.assert_array_equal(after[~inside], before[~inside])
    # a forest averages 400 over its trees: equal to rounding of the mean
    np.testing.assert_allclose(after[inside], 400.0, rtol=1e-14)
    assert tree_problem(edited) is None


def test_a_single_tree_answers_the_override_exactly(diabetes):
    X, y = diabetes
    tree = DecisionTreeRegressor(max_depth=6, random_state=0).fit(X, y)
    edited = override_region(tree, 0.1, where="x2 > 0.02").model
    assert (edited.predict(X[X[:, 2] > 0.03]) == 0.1).all()


def test_rows_missing_a_named_feature_stay_outside(cancer):
    X, y = cancer
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    rows = X.copy()
    rows[:, 20] = np.nan  # every row misses x20: none is inside
    before = forest.predict_proba(rows)
    edited = override_region(forest, 0, where=CANCER_RULE).model
    np.testing.assert_array_equal(edited.predict_proba(rows), before)


def test_strict_and_non_strict_bounds_follow_float32(cancer):
    X, y = cancer
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    # a value on the bound: "<" leaves it out, "<=" takes it in
    bound = float(np.float32(X[5, 0]))
    rows = X[[5]]
    lt = override_region(tree, 1 - tree.predict(rows)[0], where=f"x0 < {bound!r}").model
    le = override_region(tree, 1 - tree.predict(rows)[0], where=f"x0 <= {bound!r}").model
    assert lt.predict(rows)[0] == tree.predict(rows)[0]
    assert le.predict(rows)[0] != tree.predict(rows)[0]
    below = float32_below(bound)
    assert below < bound and np.nextafter(np.float32(below), np.float32(np.inf)) == bound


def test_a_leaf_of_a_tree_is_overridden_alone(cancer):
    X, y = cancer
    tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    leaves = tree.apply(X)
    leaf = int(np.bincount(leaves).argmax())
    label = tree.predict(X[leaves == leaf])[0]
    edit = override_region(tree, 1 - label, leaf=leaf)
    after = edit.model.predict(X)
    assert (after[leaves == leaf] == 1 - label).all()
    np.testing.assert_array_equal(after[leaves != leaf], tree.predict(X)[leaves != leaf])
    assert (edit.leaf, edit.nodes_added, edit.model.tree_.node_count) == (
        leaf,
        0,
        tree.tree_.node_count,
    )


def test_a_leaf_rule_moves_the_leaf_to_a_forest(cancer):
    X, y = cancer
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    leaves = tree.apply(X)
    leaf = int(np.bincount(leaves).argmax())
    rule = leaf_rule(tree, leaf)
    # the rule's box holds exactly the leaf's rows
    region = TreeRegion.parse(rule, [f"x{i}" for i in range(30)])
    np.testing.assert_array_equal(region.contains(X), leaves == leaf)
    assert TreeRegion.parse(region.to_rule(), list(region.names)) == region
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    after = override_region(forest, 0, where=rule).model.predict(X)
    assert (after[leaves == leaf] == 0).all()
    np.testing.assert_array_equal(after[leaves != leaf], forest.predict(X)[leaves != leaf])


def test_feature_names_and_string_classes(cancer):
    data = load_breast_cancer(as_frame=True)
    frame, target = data.data, data.target.map({0: "malignant", 1: "benign"})
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(frame, target)
    edit = override_region(forest, "malignant", where="`worst radius` > 16")
    inside = frame["worst radius"].to_numpy(np.float32) > 16
    assert (edit.model.predict(frame)[inside] == "malignant").all()
    assert edit.to_dict()["where"] == "`worst radius` > 16.0"
    assert edit.to_dict()["value"] == "malignant"


def test_edit_record(cancer):
    X, y = cancer
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    # depth 2 on x20/x27 at the root's split: the box cuts through two leaves
    edit = override_region(tree, "0", where="x20 > 100")  # a label typed as text
    assert edit.to_dict() == {
        "where": "x20 > 100.0",
        "leaf": None,
        "value": 0,
        "trees": 1,
        "leaves_overridden": 0,
        "nodes_added": edit.nodes_added,
    }
    assert edit.nodes_added > 0 and edit.nodes_added % 2 == 0
    # no training row is that large: nothing changes on them, nor on the importances
    np.testing.assert_array_equal(edit.model.predict_proba(X), tree.predict_proba(X))
    np.testing.assert_allclose(edit.model.feature_importances_, tree.feature_importances_)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("x1 > 2 or x2 < 1", "'or' is not allowed"),
        ("x1 != 2", "'!=' is not a box"),
        ("x99 > 1", "'x99' is not a feature of the model"),
        ("x1 > x2", "one feature with a number"),
        ("x1 in [1, 2]", "'in' is not allowed"),
        ("x1 >", "rule 'where'"),
        ("x1 > 5 and x1 <= 2", "the region is empty: no value of 'x1' is above 5.0"),
    ],
)
def test_a_region_that_is_not_a_box_is_refused(cancer, where, message):
    X, y = cancer
    tree = DecisionTreeClassifier(max_depth=2).fit(X, y)
    with pytest.raises(InvalidArgumentError, match=message):
        override_region(tree, 0, where=where)


def test_unsupported_models_and_values_are_refused(cancer, diabetes):
    X, y = cancer
    boosted = HistGradientBoostingClassifier(max_iter=3).fit(X, y)
    with pytest.raises(InvalidArgumentError, match="HistGradientBoostingClassifier is not supp"):
        override_region(boosted, 0, where="x1 > 0")
    with pytest.raises(InvalidArgumentError, match="LogisticRegression is not supported"):
        override_region(LogisticRegression(), 0, where="x1 > 0")
    tree = DecisionTreeClassifier(max_depth=2).fit(X, y)
    with pytest.raises(InvalidArgumentError, match=r"value: 7 is not one of the model's classes"):
        override_region(tree, 7, where="x1 > 0")
    with pytest.raises(InvalidArgumentError, match="give the region as where="):
        override_region(tree, 0)
    with pytest.raises(InvalidArgumentError, match="node 0 is not a leaf"):
        override_region(tree, 0, leaf=0)
    forest = RandomForestRegressor(n_estimators=2).fit(*diabetes)
    with pytest.raises(InvalidArgumentError, match="a forest's leaves belong to one tree"):
        override_region(forest, 1.0, leaf=1)
    with pytest.raises(InvalidArgumentError, match="value: must be a finite number"):
        override_region(forest, float("nan"), where="x1 > 0")
    multi = DecisionTreeRegressor(max_depth=2).fit(X, np.c_[y, y])
    with pytest.raises(InvalidArgumentError, match="predicts 2 outputs"):
        override_region(multi, 1.0, where="x1 > 0")


def test_region_contains_on_a_frame():
    frame = pd.DataFrame({"a": [0.0, 1.0, np.nan], "b": [5.0, 5.0, 5.0]})
    region = TreeRegion.parse({"field": "a", "op": ">=", "value": 0.5}, ["a", "b"])
    assert region.contains(frame).tolist() == [False, True, False]
