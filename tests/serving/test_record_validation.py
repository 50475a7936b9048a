"""Record validation: the value-by-value check for small requests never accepts what the
frame-wide checks refuse, and accepts the ordinary records the model was trained on."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from opsloop.data.schema import ColumnSchema, Schema, infer_schema
from opsloop.errors import InvalidArgumentError
from opsloop.serving.record_validation import (
    RecordCheck,
    _broken_rules,
    _passes_quickly,
    _too_large_for_floats,
    checked_records,
)

SCHEMA = Schema(
    (
        ColumnSchema("age", "int", min=18, max=90, range_margin=0.5),
        ColumnSchema("income", "float", min=0.0, max=1e6, max_null_fraction=0.1),
        ColumnSchema("score", "float", allow_non_finite=True),
        ColumnSchema("plan", "category", domain=("free", "pro", 3)),
        ColumnSchema("active", "bool"),
        ColumnSchema("note", "string", max_null_fraction=1.0),
        ColumnSchema("user", "int", id_like=True),
    )
)
VALUES = [
    None, float("nan"), float("inf"), float("-inf"), 0, 1, -1, 3, 3.0, 3.5, 17, 18, 40, 90, 91,
    124, 125, 200, 10**20, 10**400, -(10**400), True, False, "3", "free", "pro", "team", "",
    [1], {"a": 1}, 1e6, 1.5e6, 2e6, -0.5,
]  # fmt: skip


def _judged(records: list[dict]) -> tuple[bool, list[str]]:
    columns = {name: [r[name] for r in records] for name in SCHEMA.names}
    frame = pd.DataFrame(columns, columns=list(SCHEMA.names))
    problems = _broken_rules(frame, SCHEMA, None)
    problems += _too_large_for_floats(frame, SCHEMA, None, set())
    return _passes_quickly(columns, SCHEMA, None), problems


GOOD = {
    "age": 40, "income": 5e5, "score": 0.5, "plan": "pro", "active": True, "note": "x",
    "user": 7,
}  # fmt: skip


def test_quick_acceptance_implies_the_frame_wide_checks_accept():
    rng = random.Random(0)
    accepted = refused = 0
    for _ in range(2000):
        records = [
            {
                name: rng.choice(VALUES) if rng.random() < 0.1 else GOOD[name]
                for name in SCHEMA.names
            }
            for _ in range(rng.randint(1, 3))
        ]
        quick, problems = _judged(records)
        if quick:
            accepted += 1
            assert problems == [], records
        else:
            refused += 1
    assert accepted > 200 and refused > 200  # both outcomes were exercised


@pytest.mark.parametrize("column", SCHEMA.names)
def test_each_column_alone_agrees_on_every_value(column):
    assert _judged([GOOD]) == (True, [])
    for value in VALUES:
        quick, problems = _judged([{**GOOD, column: value}])
        assert quick == (problems == []), (column, value, problems)


def test_an_inferred_schema_accepts_its_own_training_rows_quickly():
    train = pd.DataFrame(
        {"a": [1, 5, 9], "b": [0.5, 1.5, 2.5], "c": ["x", "y", "x"], "d": [True, False, True]}
    )
    schema = infer_schema(train)
    records = train.to_dict("records")
    columns = {name: [r[name] for r in records] for name in schema.names}
    assert _passes_quickly(columns, schema, None)
    assert checked_records(records, schema).equals(pd.DataFrame(records))


NUMERIC = Schema(
    (
        ColumnSchema("age", "int", min=18, max=90, range_margin=0.5),
        ColumnSchema("income", "float", min=0.0, max=1e6, max_null_fraction=0.1),
        ColumnSchema("score", "float", allow_non_finite=True),
        ColumnSchema("user", "int", id_like=True),
    )
)
NUMERIC_GOOD = {"age": 40.0, "income": 5e5, "score": 0.5, "user": 7.0}


def test_the_quick_matrix_is_the_frame_the_full_check_builds():
    """Where the compiled check takes its quick path, the full check accepts the same
    records and builds the same values with float64 columns; everything else goes the
    full way and gets its answer (frame or refusal) unchanged."""
    check = RecordCheck(NUMERIC)
    rng = random.Random(1)
    quick = full = 0
    for _ in range(1500):
        records = [
            {
                name: rng.choice(VALUES) if rng.random() < 0.15 else NUMERIC_GOOD[name]
                for name in NUMERIC.names
            }
            for _ in range(rng.randint(1, 3))
        ]
        matrix = check._quick_matrix(records)
        try:
            expected = checked_records(records, NUMERIC)
        except InvalidArgumentError as refusal:
            assert matrix is None, records
            with pytest.raises(InvalidArgumentError) as again:
                check(records)
            assert str(again.value) == str(refusal)
            full += 1
            continue
        got = check(records)
        assert got.names == tuple(expected.columns)
        if matrix is None:
            assert got.frame is expected or got.frame.equals(expected)
            full += 1
        else:
            quick += 1
            assert list(expected.dtypes.astype(str)) == ["float64"] * 4
            np.testing.assert_array_equal(matrix, expected.to_numpy())
            pd.testing.assert_frame_equal(got.frame, expected)
    assert quick > 100 and full > 100  # both paths were exercised


def test_the_quick_path_leaves_ints_nulls_and_unknown_fields_to_the_full_check():
    check = RecordCheck(NUMERIC)
    assert check._quick_matrix([NUMERIC_GOOD]) is not None
    assert check._quick_matrix([{**NUMERIC_GOOD, "age": 40}]) is None  # an int keeps int64
    assert check._quick_matrix([{**NUMERIC_GOOD, "income": None}]) is None
    assert check._quick_matrix([{**NUMERIC_GOOD, "extra": 1.0}]) is None
    assert check._quick_matrix([{**NUMERIC_GOOD, "age": 40.5}]) is None
    assert check._quick_matrix([{**NUMERIC_GOOD, "age": 127.0}]) is None  # past the margin (126)
    assert check._quick_matrix([{**NUMERIC_GOOD, "age": 126.0}]) is not None  # a straggler
    assert check._quick_matrix([{**NUMERIC_GOOD, "score": float("inf")}]) is not None
    assert check([{**NUMERIC_GOOD, "age": 40}]).frame["age"].dtype == np.int64


@pytest.mark.parametrize("n_records", [10, 64, 65, 200])
def test_a_share_of_inf_above_the_inferred_bound_is_served_at_any_request_size(n_records):
    """The bound on the share of ±inf is a property of many requests (as the null share's
    is): a request holding inf in a column that allows it is served whatever its size;
    one in a column that allows none is refused by its record."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).data[["mean radius", "mean area"]].copy()
    frame.loc[17, "mean radius"] = np.inf
    schema = infer_schema(frame)
    assert schema["mean radius"].max_non_finite_fraction is not None
    records = frame.iloc[:n_records].assign(**{"mean radius": np.inf}).to_dict("records")
    served = checked_records(records, schema)
    assert len(served) == n_records and np.isinf(served["mean radius"]).all()
    records[3]["mean area"] = np.inf
    with pytest.raises(InvalidArgumentError, match=r"record 3, field 'mean area': non_finite"):
        checked_records(records, schema)
