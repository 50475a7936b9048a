"""Validation: every anomaly kind with hand-derived counts, fractions and example positions."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from opsloop.data.schema import Anomaly, ColumnSchema, Schema, ValidationResult, validate


def only(result: ValidationResult) -> Anomaly:
    assert len(result) == 1, str(result)
    return result.anomalies[0]


def schema_of(*columns: ColumnSchema, environments: tuple[str, ...] = ()) -> Schema:
    return Schema(columns, environments=environments)


# -- type_mismatch ----------------------------------------------------------------------------


def test_mixed_object_column_in_an_int_column():
    schema = schema_of(ColumnSchema("x", "int", max_null_fraction=1.0))
    values = [1, "abc", 2.5, None, True, "7", 3.0, np.int64(4)]
    anomaly = only(validate(pd.DataFrame({"x": pd.Series(values, dtype=object)}), schema))
    # Rejected: "abc" (1), 2.5 (2), True (4), "7" (5); 3.0 is a whole float, np.int64 an int.
    assert (anomaly.kind, anomaly.column, anomaly.count) == ("type_mismatch", "x", 4)
    assert anomaly.fraction == 4 / 8
    assert anomaly.examples == ((1, "abc"), (2, 2.5), (4, True), (5, "7"))
    assert anomaly.detail == (
        "expected int, found str ×2, bool ×1, float with a fraction ×1 (1 of them read as numbers)"
    )


def test_float_dtype_in_an_int_column():
    schema = schema_of(ColumnSchema("x", "int", max_null_fraction=1.0))
    df = pd.DataFrame({"x": [1.0, 2.5, np.nan, np.inf, 4.0, -np.inf]})
    anomaly = only(validate(df, schema))
    assert (anomaly.kind, anomaly.count, anomaly.fraction) == ("type_mismatch", 3, 0.5)
    assert anomaly.examples == ((1, 2.5), (3, math.inf), (5, -math.inf))
    assert anomaly.detail == "expected int, found non-finite float ×2, float with a fraction ×1"


def test_digit_strings_are_a_type_mismatch_in_a_numeric_column():
    schema = schema_of(ColumnSchema("x", "float"))
    for dtype in ("str", "string[python]", "string[pyarrow]", object):
        df = pd.DataFrame({"x": pd.Series(["1.5", "2", "n/a"], dtype=dtype)})
        anomaly = only(validate(df, schema))
        assert (anomaly.kind, anomaly.count, anomaly.fraction) == ("type_mismatch", 3, 1.0)
        assert anomaly.examples == ((0, "1.5"), (1, "2"), (2, "n/a"))
        assert anomaly.detail == "expected float, found str ×3 (2 of them read as numbers)"


@pytest.mark.parametrize(
    ("column_type", "series", "positions"),
    [
        ("int", pd.Series([True, False]), [0, 1]),
        ("bool", pd.Series([1, 0]), [0, 1]),
        ("bool", pd.Series([True, "False", None], dtype=object), [1]),
        ("float", pd.Series([1.5, "2"], dtype=object), [1]),
        ("float", pd.array([1, None, 3], dtype="Int64"), []),
        ("float", pd.Series([1, 2], dtype=np.uint8), []),
        ("int", pd.Series([7, None], dtype="Float64"), []),
        ("datetime", pd.Series(["2024-01-01", "2024-01-02"]), [0, 1]),
        ("datetime", pd.Series([pd.Timestamp("2024-01-01"), 5, None], dtype=object), [1]),
        ("datetime", pd.Series([1, 2]), [0, 1]),
        ("string", pd.Series(["a", 1, None], dtype=object), [1]),
        ("string", pd.Categorical(["a", "b"]), []),
        ("string", pd.Categorical([1, 2]), [0, 1]),
        ("category", pd.Series(["a", 1, 2.5, True], dtype=object), []),
        ("category", pd.Series([pd.Timestamp("2024-01-01")], dtype=object), [0]),
        ("int", pd.Series(pd.to_timedelta([1, 2], unit="s")), [0, 1]),
    ],
)
def test_type_rules(column_type, series, positions):
    schema = schema_of(ColumnSchema("x", column_type, max_null_fraction=1.0))
    result = validate(pd.DataFrame({"x": series}), schema)
    found = result.select(kind="type_mismatch")
    assert [p for a in found for p, _ in a.examples] == positions
    assert len(result) == len(found)


# -- nulls, non-finite numbers, ranges, categories --------------------------------------------


def test_every_null_spelling_counts_as_null():
    schema = schema_of(ColumnSchema("x", "int", max_null_fraction=0.25))
    values = [1, None, np.nan, 4, pd.NA, 6, pd.NaT, 8]
    anomaly = only(validate(pd.DataFrame({"x": pd.Series(values, dtype=object)}), schema))
    assert (anomaly.kind, anomaly.count, anomaly.fraction) == ("null_fraction_exceeded", 4, 0.5)
    assert anomaly.examples == ((1, None), (2, None), (4, None), (6, None))
    assert anomaly.detail == "50% of the rows are null, above max_null_fraction 25%"


def test_null_fraction_equal_to_the_limit_passes():
    schema = schema_of(ColumnSchema("x", "float", max_null_fraction=0.25))
    assert validate(pd.DataFrame({"x": [1.0, None, 2.0, 3.0]}), schema).ok
    nullable = pd.DataFrame({"x": pd.array([1, None, None, 3], dtype="Int64")})
    assert only(validate(nullable, schema)).fraction == 0.5


def test_null_significance_judges_the_null_share_by_a_binomial_test():
    schema = schema_of(ColumnSchema("x", "float", max_null_fraction=0.05, null_significance=0.001))
    # 2 nulls in 20 rows (10%) is no evidence against a 5% rate: p = 0.264.
    few = np.where(np.arange(20) < 2, np.nan, 1.0)
    assert validate(pd.DataFrame({"x": few}), schema).ok
    # 140 in 2,000 (7%): above 5% beyond chance, p = scipy's one-sided binomial test.
    many = np.where(np.arange(2_000) < 140, np.nan, 1.0)
    anomaly = only(validate(pd.DataFrame({"x": many}), schema))
    p_value = binomtest(140, 2_000, 0.05, alternative="greater").pvalue
    assert p_value < 0.001
    assert (anomaly.kind, anomaly.count, anomaly.fraction) == ("null_fraction_exceeded", 140, 0.07)
    assert anomaly.detail == (
        "7% of the rows are null, above max_null_fraction 5% beyond chance (140 of 2000 "
        f"rows, binomial p-value {p_value:.3g} below null_significance 0.001)"
    )
    # 130 in 2,000 (6.5%): p = 0.0018, chance at this significance.
    assert binomtest(130, 2_000, 0.05, alternative="greater").pvalue > 0.001
    some = np.where(np.arange(2_000) < 130, np.nan, 1.0)
    assert validate(pd.DataFrame({"x": some}), schema).ok
    # Without null_significance the share alone decides, as before.
    exact = schema_of(ColumnSchema("x", "float", max_null_fraction=0.05))
    assert only(validate(pd.DataFrame({"x": few}), exact)).count == 2
    # A column that allows no nulls catches a single one, significance or not.
    never = schema_of(ColumnSchema("x", "float", null_significance=0.001))
    assert only(validate(pd.DataFrame({"x": [1.0, np.nan] + [2.0] * 998}), never)).count == 1


def test_null_significance_round_trips_and_is_checked():
    column = ColumnSchema("x", "float", max_null_fraction=0.06, null_significance=0.001)
    assert column.to_dict()["null_significance"] == 0.001
    assert Schema.from_yaml(schema_of(column).to_yaml())["x"] == column
    assert "null_significance" not in ColumnSchema("x", "float").to_dict()
    with pytest.raises(ValueError, match=r"column 'x', field 'null_significance': 2\.0 is outside"):
        ColumnSchema("x", "float", null_significance=2)


def test_inf_in_a_float_column():
    strict = schema_of(ColumnSchema("x", "float", max_null_fraction=1.0, min=0, max=10))
    df = pd.DataFrame({"x": [1.0, np.inf, np.nan, -np.inf, 5.0]})
    anomaly = only(validate(df, strict))
    assert (anomaly.kind, anomaly.count, anomaly.fraction) == ("non_finite", 2, 0.4)
    assert anomaly.examples == ((1, math.inf), (3, -math.inf))
    # Allowed ±inf is neither an anomaly nor out of range.
    allowed = strict.update_column("x", allow_non_finite=True)
    assert validate(df, allowed).ok
    objects = pd.DataFrame({"x": pd.Series([1, float("inf"), 2.0], dtype=object)})
    assert only(validate(objects, strict)).examples == ((1, math.inf),)


def test_out_of_range():
    schema = schema_of(ColumnSchema("x", "int", min=0, max=10))
    df = pd.DataFrame({"x": [-1, 5, 11, 10, 0, 12]})
    anomaly = only(validate(df, schema))
    assert (anomaly.kind, anomaly.count, anomaly.fraction) == ("out_of_range", 3, 0.5)
    assert anomaly.examples == ((0, -1), (2, 11), (5, 12))
    assert anomaly.detail == "1 below min 0, 2 above max 10"


def test_out_of_range_for_nullable_and_object_columns_and_open_sides():
    schema = schema_of(ColumnSchema("x", "float", max_null_fraction=1.0, max=1.5))
    nullable = pd.DataFrame({"x": pd.array([None, 2.0, -100.0], dtype="Float64")})
    assert only(validate(nullable, schema)).examples == ((1, 2.0),)
    objects = pd.DataFrame({"x": pd.Series([1, "a", 2, 10**400], dtype=object)})
    result = validate(objects, schema)
    assert [(a.kind, a.count) for a in result] == [("type_mismatch", 1), ("out_of_range", 2)]
    assert result.select(kind="out_of_range")[0].examples == ((2, 2), (3, 10**400))


def test_values_of_the_wrong_type_are_not_range_checked():
    schema = schema_of(ColumnSchema("x", "int", min=0, max=10))
    anomaly = only(validate(pd.DataFrame({"x": [5.5, 99.5]}), schema))
    assert (anomaly.kind, anomaly.count) == ("type_mismatch", 2)


def test_unknown_category():
    schema = schema_of(ColumnSchema("c", "category", max_null_fraction=1.0, domain=("a", "b")))
    for dtype in ("str", "string[pyarrow]", "string[python]", "category", object):
        df = pd.DataFrame({"c": pd.Series(["a", "c", "b", "d", "c", None], dtype=dtype)})
        anomaly = only(validate(df, schema))
        assert (anomaly.kind, anomaly.count, anomaly.fraction) == ("unknown_category", 3, 0.5)
        assert anomaly.examples == ((1, "c"), (3, "d"), (4, "c"))
        assert anomaly.detail == "2 distinct values not in the domain"


def test_category_domain_keeps_true_one_and_one_point_zero_apart():
    schema = schema_of(ColumnSchema("c", "category", domain=(1, "a")))
    df = pd.DataFrame({"c": pd.Series([1, True, "a", 1.0, 2], dtype=object)})
    anomaly = only(validate(df, schema))
    assert anomaly.examples == ((1, True), (3, 1.0), (4, 2))


def test_examples_are_the_first_five_positions_not_index_labels():
    schema = schema_of(ColumnSchema("x", "int", max=0))
    df = pd.DataFrame({"x": np.arange(10)}, index=np.arange(100, 110)[::-1])
    anomaly = only(validate(df, schema))
    assert (anomaly.count, anomaly.fraction) == (9, 0.9)
    assert anomaly.examples == ((1, 1), (2, 2), (3, 3), (4, 4), (5, 5))


def test_datetime_examples_are_iso_text():
    schema = schema_of(ColumnSchema("t", "datetime"))
    df = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", None])})
    assert only(validate(df, schema)).examples == ((1, None),)
    df = pd.DataFrame({"t": pd.Series([pd.Timestamp("2024-01-01 10:00"), "x"], dtype=object)})
    anomaly = only(validate(df, schema.update_column("t", type="string")))
    assert anomaly.examples == ((0, "2024-01-01T10:00:00"),)


# -- columns and frames -------------------------------------------------------------------


def test_missing_unexpected_and_duplicate_columns():
    schema = schema_of(
        ColumnSchema("a", "int"),
        ColumnSchema("b", "int"),
        ColumnSchema("opt", "int", required=False),
    )
    df = pd.DataFrame([[1, 2, 3, 4]], columns=["a", "extra", "a", "x2"])
    result = validate(df, schema)
    assert [(a.kind, a.column, a.count, a.fraction) for a in result] == [
        ("duplicate_column", "a", 1, 1.0),
        ("missing_column", "b", 1, 1.0),
        ("unexpected_column", "extra", 1, 1.0),
        ("unexpected_column", "x2", 1, 1.0),
    ]
    assert result.anomalies[0].detail == "appears 2 times (positions [0, 2]); the first is checked"
    assert result.anomalies[1].detail == "required column of type int is not in the frame"
    assert result.anomalies[2].detail == "the schema does not define this column"


def test_column_labels_match_as_text():
    schema = schema_of(ColumnSchema("0", "int"))
    assert validate(pd.DataFrame({0: [1, 2]}), schema).ok


def test_empty_frame():
    schema = schema_of(ColumnSchema("x", "int"), ColumnSchema("y", "string"))
    result = validate(pd.DataFrame({"x": pd.Series([], dtype=int)}), schema)
    assert [(a.kind, a.column, a.count, a.fraction) for a in result] == [
        ("empty_frame", None, 0, 0.0),
        ("missing_column", "y", 0, 1.0),
    ]
    assert (
        str(result).splitlines()[1]
        == "  (frame): empty_frame in 0 rows (0.0%): the batch has no rows"
    )
    assert only(validate(pd.DataFrame(), Schema(()))).kind == "empty_frame"


# -- environments -------------------------------------------------------------------------


@pytest.fixture
def label_schema() -> Schema:
    return schema_of(
        ColumnSchema("x", "float"),
        ColumnSchema("label", "int", absent_in=("serving",)),
        environments=("training", "serving"),
    )


def test_label_required_in_training(label_schema):
    anomaly = only(validate(pd.DataFrame({"x": [1.0]}), label_schema, "training"))
    assert (anomaly.kind, anomaly.column) == ("missing_column", "label")
    assert anomaly.detail.endswith("in environment 'training'")
    assert validate(pd.DataFrame({"x": [1.0], "label": [1]}), label_schema, "training").ok


def test_label_absent_in_serving(label_schema):
    assert validate(pd.DataFrame({"x": [1.0]}), label_schema, "serving").ok
    leaked = validate(pd.DataFrame({"x": [1.0], "label": [1]}), label_schema, "serving")
    anomaly = only(leaked)
    assert (anomaly.kind, anomaly.column) == ("unexpected_column", "label")
    assert anomaly.detail == "the schema leaves this column out of environment 'serving'"


def test_no_environment_expects_every_column(label_schema):
    assert only(validate(pd.DataFrame({"x": [1.0]}), label_schema)).kind == "missing_column"


def test_bad_arguments_raise(label_schema):
    df = pd.DataFrame({"x": [1.0]})
    with pytest.raises(ValueError, match="unknown environment 'test'; schema environments: train"):
        validate(df, label_schema, "test")
    with pytest.raises(ValueError, match="none defined"):
        validate(df, Schema(()), "serving")
    with pytest.raises(TypeError, match="expects a pandas DataFrame"):
        validate({"x": [1.0]}, label_schema)
    with pytest.raises(TypeError, match="expects a Schema"):
        validate(df, label_schema.to_dict())
    with pytest.raises(TypeError, match="environment must be a string"):
        validate(df, label_schema, 1)


# -- the result ---------------------------------------------------------------------------


def test_result_interface():
    schema = schema_of(ColumnSchema("x", "float", min=0), ColumnSchema("y", "int"))
    df = pd.DataFrame({"x": [-1.0, np.inf, 2.0, -3.0], "z": ["a", "b", "c", "d"]})
    result = validate(df, schema)
    assert not result.ok and len(result) == 4
    assert [a.kind for a in result] == [
        "non_finite",
        "out_of_range",
        "missing_column",
        "unexpected_column",
    ]
    assert [a.kind for a in result.select(column="x")] == ["non_finite", "out_of_range"]
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["anomalies"][0] == {
        "column": "x",
        "kind": "non_finite",
        "count": 1,
        "fraction": 0.25,
        "examples": [[1, "inf"]],
        "detail": "±inf where allow_non_finite is false",
    }
    assert (payload["ok"], payload["n_rows"], payload["schema_version"]) == (False, 4, 1)
    frame = result.to_frame()
    assert list(frame.columns) == ["column", "kind", "count", "fraction", "examples", "detail"]
    assert frame["count"].tolist() == [1, 2, 4, 4]
    assert frame["fraction"].tolist() == [0.25, 0.5, 1.0, 1.0]
    assert str(result).splitlines() == [
        "4 anomalies in 4 rows (schema version 1):",
        "  x: non_finite in 1 row (25.0%): ±inf where allow_non_finite is false; e.g. row 1: inf",
        "  x: out_of_range in 2 rows (50.0%): 2 below min 0; e.g. row 0: -1.0, row 3: -3.0",
        "  y: missing_column in 4 rows (100.0%): required column of type int is not in the frame",
        "  z: unexpected_column in 4 rows (100.0%): the schema does not define this column",
    ]
    assert "<table" in result._repr_html_()
    with pytest.raises(ValueError, match="kind 'nope'"):
        result.select(kind="nope")


def test_a_clean_result():
    result = validate(pd.DataFrame({"x": [1]}), schema_of(ColumnSchema("x", "int")))
    assert result.ok and len(result) == 0 and list(result) == []
    assert str(result) == "no anomalies in 1 row (schema version 1)"
    assert result.to_frame().empty


# -- property: object columns against a value-by-value rule written out in plain Python ------

_values = st.one_of(
    st.none(),
    st.just(math.nan),
    st.booleans(),
    st.integers(-20, 20),
    st.floats(-20, 20),
    st.sampled_from([math.inf, -math.inf]),
    st.sampled_from([1.0, 2.0, -3.0]),
    st.sampled_from(["a", "b", "zz", "3", ""]),
)


def _reference(values: list, column: ColumnSchema) -> dict[str, list[int]]:
    def accepted(v) -> bool:
        if column.type == "int":
            return (type(v) is int) or (type(v) is float and math.isfinite(v) and v == int(v))
        if column.type == "float":
            return type(v) in (int, float)
        if column.type == "bool":
            return type(v) is bool
        if column.type == "string":
            return type(v) is str
        return type(v) in (str, int, float, bool)

    found: dict[str, list[int]] = {}
    for position, v in enumerate(values):
        if v is None or (type(v) is float and math.isnan(v)):
            found.setdefault("null", []).append(position)
        elif not accepted(v):
            found.setdefault("type_mismatch", []).append(position)
        elif type(v) is float and not math.isfinite(v) and column.type == "float":
            found.setdefault("non_finite", []).append(position)
        elif (
            column.min is not None
            and type(v) in (int, float)
            and not (column.min <= v <= column.max)
        ):
            found.setdefault("out_of_range", []).append(position)
        elif column.domain is not None and (type(v), v) not in {
            (type(d), d) for d in column.domain
        }:
            found.setdefault("unknown_category", []).append(position)
    return found


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(_values, min_size=1, max_size=30),
    column_type=st.sampled_from(["int", "float", "bool", "string", "category"]),
)
def test_object_columns_match_a_plain_python_rule(values, column_type):
    bounds = {"min": -5, "max": 5} if column_type in ("int", "float") else {}
    domain = ("a", "3", 1, 2.0, True) if column_type == "category" else None
    column = ColumnSchema("x", column_type, domain=domain, **bounds)
    result = validate(pd.DataFrame({"x": pd.Series(values, dtype=object)}), Schema((column,)))
    expected = _reference(values, column)
    expected["null_fraction_exceeded"] = expected.pop("null", [])
    for kind in (
        "type_mismatch",
        "null_fraction_exceeded",
        "non_finite",
        "out_of_range",
        "unknown_category",
    ):
        positions = expected.get(kind, [])
        found = result.select(kind=kind)
        assert sum(a.count for a in found) == len(positions), kind
        assert [p for a in found for p, _ in a.examples] == positions[:5], kind
        if positions:
            assert found[0].fraction == len(positions) / len(values)


def test_one_inf_in_training_bounds_the_share_of_inf_a_batch_may_hold():
    from scipy.stats import beta
    from sklearn.datasets import load_breast_cancer

    from opsloop.data.schema import infer_schema, validate

    frame = load_breast_cancer(as_frame=True).data[["mean radius", "mean area"]].copy()
    frame.loc[17, "mean radius"] = np.inf
    schema = infer_schema(frame)
    column = schema["mean radius"]
    # The upper 0.999 Clopper-Pearson bound of 1 infinite row in 569, rounded up to 4
    # decimals: the rule of the null share.
    bound = math.ceil(beta.ppf(0.999, 2, 568) * 10_000) / 10_000
    assert (column.allow_non_finite, column.max_non_finite_fraction) == (True, bound)
    assert column.non_finite_significance == 0.001
    assert schema["mean area"].allow_non_finite is False
    assert validate(frame, schema).ok
    assert validate(frame.iloc[:100], schema).ok  # one inf in 100 rows: within chance

    all_inf = frame.assign(**{"mean radius": np.inf})
    (anomaly,) = validate(all_inf, schema)
    assert (anomaly.column, anomaly.kind, anomaly.count) == (
        "mean radius", "non_finite_fraction_exceeded", 569
    )  # fmt: skip
    assert anomaly.detail.startswith(
        f"100% of the rows are ±inf, above max_non_finite_fraction {bound * 100:.4g}% beyond "
        "chance "
        "(569 of 569 rows, binomial p-value"
    )
    # The schema round-trips through YAML with its bound.
    assert type(schema).from_yaml(schema.to_yaml())["mean radius"] == column


def test_allowing_no_inf_drops_the_inferred_bound_on_their_share():
    from opsloop.data.schema import Schema, infer_schema, validate

    frame = pd.DataFrame({"x": [1.0, np.inf] + [2.0] * 98})
    schema = infer_schema(frame)
    assert schema["x"].max_non_finite_fraction is not None
    strict = schema.update_column("x", allow_non_finite=False)
    assert (strict["x"].allow_non_finite, strict["x"].max_non_finite_fraction) == (False, None)
    assert strict["x"].non_finite_significance == 0.0
    (anomaly,) = validate(frame, strict)
    assert (anomaly.kind, anomaly.count, anomaly.examples) == ("non_finite", 1, ((1, np.inf),))
    # A hand-edited YAML that turns allow_non_finite off keeps loading.
    text = schema.to_yaml().replace("allow_non_finite: true", "allow_non_finite: false")
    assert Schema.from_yaml(text)["x"] == strict["x"]


def test_a_column_of_nulls_reads_as_a_percentage_of_the_rows():
    # A share of 1 printed as a share read "1 of the rows"; as a percentage it is plain.
    schema = schema_of(ColumnSchema("x", "float", max_null_fraction=0.1))
    anomaly = only(validate(pd.DataFrame({"x": [np.nan] * 8}), schema))
    assert (anomaly.count, anomaly.fraction) == (8, 1.0)
    assert anomaly.detail == "100% of the rows are null, above max_null_fraction 10%"


def test_a_tiny_null_share_reads_in_plain_decimals_beside_its_limit():
    # One null in two million rows is 0.00005% (not 5e-05%), and the limit is a percentage too.
    values = np.arange(2_000_000, dtype=np.float64)
    values[123] = np.nan
    (anomaly,) = validate(pd.DataFrame({"x": values}), Schema((ColumnSchema("x", "float"),)))
    assert anomaly.detail == "0.00005% of the rows are null, above max_null_fraction 0%"
