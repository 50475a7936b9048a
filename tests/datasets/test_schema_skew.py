"""inject_schema_skew: each kind produces what it says, on a copy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opsloop.data.types import infer_column_type
from opsloop.datasets import credit, inject_schema_skew
from opsloop.datasets.schema_skew import TEXT_TOKENS


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return credit(2_000, seed=0)


@pytest.fixture
def untouched(frame, assert_same_frame):
    snapshot = frame.copy(deep=True)
    yield frame
    assert_same_frame(frame, snapshot)


def test_string_in_numeric(untouched):
    out = inject_schema_skew(untouched, "string_in_numeric", "salary", fraction=0.05, seed=1)
    column = out["salary"]
    is_text = column.map(lambda v: isinstance(v, str)).to_numpy()
    assert column.dtype == object
    assert is_text.sum() == 100
    assert set(column[is_text]) <= set(TEXT_TOKENS)
    # the other cells keep their numbers, and the majority type is still numeric
    assert column[~is_text].astype(float).tolist() == untouched["salary"][~is_text].tolist()
    assert infer_column_type(column) == "float"


def test_new_category(untouched):
    out = inject_schema_skew(untouched, "new_category", "device", fraction=0.01, seed=2)
    assert list(out["device"].cat.categories) == ["desktop", "mobile", "tablet", "device_new"]
    assert (out["device"] == "device_new").sum() == 20
    same = out["device"] != "device_new"
    assert (
        out["device"][same].astype(str).tolist() == untouched["device"][same].astype(str).tolist()
    )
    named = inject_schema_skew(untouched, "new_category", "region", value="offshore")
    assert (named["region"] == "offshore").sum() == 20


def test_new_category_on_a_string_column():
    df = pd.DataFrame({"colour": ["red", "blue"] * 50})
    out = inject_schema_skew(df, "new_category", "colour", fraction=0.1, value="green")
    assert (out["colour"] == "green").sum() == 10
    assert out["colour"].dtype == df["colour"].dtype
    assert (df["colour"] != "green").all()


def test_missing_column(untouched):
    out = inject_schema_skew(untouched, "missing_column", "region")
    assert "region" not in out.columns
    assert list(out.columns) == [c for c in untouched.columns if c != "region"]


@pytest.mark.parametrize("column", ["age", "loan_amount"])
def test_out_of_range(untouched, column):
    out = inject_schema_skew(untouched, "out_of_range", column, fraction=0.02, seed=3)
    low, high = untouched[column].min(), untouched[column].max()
    outside = (out[column] < low) | (out[column] > high)
    assert outside.sum() == 40
    assert (out[column] > high).sum() == 20 and (out[column] < low).sum() == 20
    assert out[column].dtype == untouched[column].dtype
    span = high - low
    moved = out[column][outside]
    distance = np.where(moved > high, moved - high, low - moved)
    assert distance.min() >= 0.1 * span - 1 and distance.max() <= span + 1
    assert (out[column][~outside] == untouched[column][~outside]).all()


def test_out_of_range_keeps_nullable_integers():
    df = credit(500, seed=1, missing=0.1)
    out = inject_schema_skew(df, "out_of_range", "age", fraction=0.1)
    assert out["age"].dtype == "Int64"
    assert ((out["age"] > 80) | (out["age"] < 20)).sum() == 50


@pytest.mark.parametrize(
    ("column", "dtype"),
    [("age", "Int64"), ("device", "category"), ("salary", "float64"), ("purpose", None)],
)
def test_null_burst(untouched, column, dtype):
    out = inject_schema_skew(untouched, "null_burst", column, fraction=0.1, seed=4)
    blank = np.flatnonzero(out[column].isna().to_numpy())
    assert len(blank) == 200
    assert np.array_equal(blank, np.arange(blank[0], blank[0] + 200))
    # The burst keeps the column's dtype (text keeps pandas' default text dtype).
    assert out[column].dtype == (untouched[column].dtype if dtype is None else dtype)


def test_null_burst_on_booleans():
    df = pd.DataFrame({"flag": np.array([True, False] * 5)})
    out = inject_schema_skew(df, "null_burst", "flag", fraction=0.3, seed=0)
    assert out["flag"].dtype == "boolean" and out["flag"].isna().sum() == 3


def test_at_least_one_row_changes():
    df = pd.DataFrame({"x": np.arange(10.0)})
    out = inject_schema_skew(df, "string_in_numeric", "x", fraction=0.001)
    assert out["x"].map(lambda v: isinstance(v, str)).sum() == 1


def test_same_seed_same_skew(frame, assert_same_frame):
    first = inject_schema_skew(frame, "out_of_range", "salary", fraction=0.1, seed=9)
    second = inject_schema_skew(frame, "out_of_range", "salary", fraction=0.1, seed=9)
    assert_same_frame(first, second)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kind": "typo", "column": "age"}, ValueError, "kind must be one of"),
        ({"kind": "null_burst", "column": "nope"}, ValueError, "df has no column 'nope'"),
        ({"kind": "null_burst", "column": "age", "fraction": 0}, ValueError, "fraction must be"),
        ({"kind": "null_burst", "column": "age", "seed": -1}, ValueError, "seed must be"),
        ({"kind": "string_in_numeric", "column": "device"}, TypeError, "needs a numeric column"),
        ({"kind": "out_of_range", "column": "purpose"}, TypeError, "needs a numeric column"),
        ({"kind": "new_category", "column": "age"}, TypeError, "needs a categorical column"),
        (
            {"kind": "new_category", "column": "device", "value": "mobile"},
            ValueError,
            "already a value of column 'device'",
        ),
    ],
)
def test_bad_arguments_are_named(frame, kwargs, error, message):
    with pytest.raises(error, match=message):
        inject_schema_skew(frame, **kwargs)
