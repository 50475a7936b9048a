"""What an adversarial row may change: built from a schema, checked, and repaired by hand."""

import numpy as np
import pytest

from opsloop.data.schema import ColumnSchema, Schema
from opsloop.learn.robustness import FeatureConstraints

SCHEMA = Schema(
    (
        ColumnSchema("age", "int", min=18, max=90),
        ColumnSchema("salary", "float", min=0.0, max=200_000.0),
        ColumnSchema("owner", "bool"),
        ColumnSchema("region", "category", domain=("north", "south", "west")),
        ColumnSchema("device", "category", domain=("mobile", "desktop")),
        ColumnSchema("note", "string"),
    )
)


def test_from_schema_maps_each_column_to_its_features():
    names = ["age", "salary", "owner", "region_north", "region_south", "region_west", "device"]
    c = FeatureConstraints.from_schema(
        SCHEMA, [*names, "extra"], center={"salary": 50_000.0}, scale={"salary": 25_000.0}
    )
    assert c.lower.tolist() == [18, -2, 0, 0, 0, 0, -np.inf, -np.inf]
    assert c.upper.tolist() == [90, 6, 1, 1, 1, 1, np.inf, np.inf]
    assert c.integer_steps == {0: 1.0, 2: 1.0}  # age and the bool; salary is a float
    assert c.one_hot == ((3, 4, 5),)
    assert c.immutable == (6,)  # a category fed as one code has no meaningful step
    assert c.feature_names[-1] == "extra"  # not in the schema: unconstrained


def test_a_scaled_integer_moves_by_one_over_its_scale():
    c = FeatureConstraints.from_schema(SCHEMA, ["age"], center={"age": 40.0}, scale={"age": 8.0})
    assert c.integer_steps == {0: 0.125}
    assert (c.lower[0], c.upper[0]) == ((18 - 40) / 8, (90 - 40) / 8)


def test_bad_constraints_name_the_field():
    with pytest.raises(ValueError, match=r"feature 'b' has lower 2\.0 above upper 1\.0"):
        FeatureConstraints(2, lower=[0, 2], upper=1, feature_names=["a", "b"])
    with pytest.raises(ValueError, match="a feature is in more than one group"):
        FeatureConstraints(4, one_hot=[[0, 1], [1, 2]])
    with pytest.raises(ValueError, match=r"'lower': expected a number or 3 numbers"):
        FeatureConstraints(3, lower=[0, 1])
    with pytest.raises(ValueError, match=r"step of feature 0 must be positive"):
        FeatureConstraints(3, integer={0: 0.0})
    with pytest.raises(ValueError, match="scale: 'x' is not one of the feature names"):
        FeatureConstraints.from_schema(SCHEMA, ["age"], scale={"x": 2.0})


def test_check_names_the_row_and_rule():
    c = FeatureConstraints(3, lower=0, upper=5, integer=[0], one_hot=[[1, 2]])
    c.check(np.array([[1.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"feature 0 has lower bound 0\.0, row 1 has -1\.0"):
        c.check(np.array([[1.0, 0.0, 1.0], [-1.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"one-hot group .* row 0 has \[1\.0, 1\.0\]"):
        c.check(np.array([[1.0, 1.0, 1.0]]))


def test_l2_repair_by_hand():
    c = FeatureConstraints(4, integer=[0], one_hot=[[1, 2]])
    X0 = np.array([[2.0, 1.0, 0.0, 0.0], [2.0, 1.0, 0.0, 0.0]])
    X = np.array([[3.6, 0.2, 0.8, 0.5], [2.4, 0.9, 0.1, 2.0]])
    out = c.repair(X0, X, eps=2.0, norm="l2")
    # row 0: age +1.6 -> +1, the group switches (cost sqrt 2): discrete norm sqrt 3 <= 2, and
    # the float feature keeps at most sqrt(4 - 3) = 1 of its 0.5
    np.testing.assert_allclose(out[0], [3.0, 0.0, 1.0, 0.5])
    # row 1: age +0.4 -> 0, no switch; the float's +2.0 is within the whole budget 2
    np.testing.assert_allclose(out[1], [2.0, 1.0, 0.0, 2.0])
    # with eps 1.5 row 0's switch and step cost sqrt 3 > 1.5: both undone, the float kept
    tight = c.repair(X0[:1], X[:1], eps=1.5, norm="l2")
    np.testing.assert_allclose(tight[0], [2.0, 1.0, 0.0, 0.5])
