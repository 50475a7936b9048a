import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from opsloop.analysis.errortree import error_tree


@pytest.fixture
def planted():
    rng = np.random.default_rng(5)
    n = 4000
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "device": pd.Categorical(rng.choice(["mobile", "pc", "tv"], n)),
            "noise": rng.normal(size=n),
        }
    )
    # the model is wrong exactly on mobile users over 50
    wrong = (X["device"] == "mobile").to_numpy() & (X["age"] > 50).to_numpy()
    y_true = rng.integers(0, 2, n)
    return X, y_true, np.where(wrong, 1 - y_true, y_true), wrong


def test_finds_planted_slice(planted):
    X, y_true, y_pred, wrong = planted
    tree = error_tree(X, y_true, y_pred, max_depth=2)
    top = tree.leaves[0]
    assert top.rule == "age > 50.5 and device = mobile"
    assert top.error_rate == 1.0
    assert top.n == top.errors == int(wrong.sum())
    assert top.share_of_errors == 1.0
    assert sum(leaf.n for leaf in tree.leaves) == len(X)
    assert tree.errors == int(wrong.sum())
    assert tree.error_rate == pytest.approx(wrong.mean())


def test_leaf_counts_equal_sklearn_apply(planted):
    X, y_true, y_pred, wrong = planted
    tree = error_tree(X, y_true, y_pred, max_depth=3, min_samples_leaf=50, seed=1)
    design = np.column_stack(
        [
            X["age"].to_numpy(float),
            *(X["device"].to_numpy() == v for v in ["mobile", "pc", "tv"]),
            X["noise"].to_numpy(),
        ]
    ).astype(float)
    model = DecisionTreeClassifier(max_depth=3, min_samples_leaf=50, random_state=1)
    leaves = pd.Series(model.fit(design, wrong).apply(design))
    expected = pd.Series(wrong).groupby(leaves.to_numpy()).agg(["size", "sum"])
    got = sorted((leaf.n, leaf.errors) for leaf in tree.leaves)
    assert got == sorted(zip(expected["size"].tolist(), expected["sum"].tolist(), strict=True))


def test_rules_merge_bounds_and_exclusions():
    # errors where 20 < x <= 30 and colour is neither red nor blue
    x = np.tile(np.arange(50), 6)
    colour = np.repeat(["blue", "green", "red"], 100)
    wrong = (x > 20) & (x <= 30) & (colour == "green")
    X = pd.DataFrame({"x": x, "colour": colour})
    tree = error_tree(X, np.zeros(300, int), wrong.astype(int), max_depth=4, min_samples_leaf=1)
    top = tree.leaves[0]
    assert top.error_rate == 1.0 and top.n == 20
    assert top.rule in {
        "20.5 < x <= 30.5 and colour = green",
        "20.5 < x <= 30.5 and colour ∉ {blue, red}",
        "20.5 < x <= 30.5 and colour ∉ {red, blue}",
    }


def test_missing_category_gets_own_indicator():
    X = pd.DataFrame({"device": ["pc"] * 30 + [None] * 30})
    tree = error_tree(X, [0] * 60, [0] * 30 + [1] * 30, max_depth=1, min_samples_leaf=5)
    assert tree.leaves[0].rule in {"device = <missing>", "device ≠ pc"}
    assert tree.leaves[0].errors == 30


def test_bad_input():
    with pytest.raises(TypeError, match="X must be a pandas DataFrame"):
        error_tree(np.zeros((2, 1)), [0, 1], [0, 1])
    with pytest.raises(ValueError, match="X has 1 rows but y_true has 2"):
        error_tree(pd.DataFrame({"a": [1]}), [0, 1], [0, 1])
    with pytest.raises(ValueError, match="max_depth must be an integer >= 1"):
        error_tree(pd.DataFrame({"a": [1, 2]}), [0, 1], [0, 1], max_depth=0)
    with pytest.raises(TypeError, match="'t' holds datetimes"):
        error_tree(pd.DataFrame({"t": pd.to_datetime(["2024-01-01"] * 2)}), [0, 1], [0, 1])
