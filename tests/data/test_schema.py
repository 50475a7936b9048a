"""Schema inference, the column/schema model, versions, environments and the YAML round trip."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from opsloop.data.schema import ColumnSchema, Schema, infer_schema, validate

CREATED = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def all_types_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "int": [3, 1, 4, 1],
            "int_nullable": pd.array([7, None, -2, 5], dtype="Int64"),
            "float": [0.5, np.nan, np.inf, -2.0],
            "float_nullable": pd.array([1.5, None, None, 0.25], dtype="Float64"),
            "bool": [True, False, True, True],
            "bool_nullable": pd.array([True, None, False, True], dtype="boolean"),
            "str_arrow": pd.array(["b", "a", "b", None], dtype="string[pyarrow]"),
            "str_python": pd.array(["y", "x", "x", "x"], dtype="string[python]"),
            "categorical": pd.Categorical(["u", "v", None, "u"]),
            "categorical_int": pd.Categorical([2, 1, 1, 2]),
            "text": ["alpha", "beta", "gamma", "delta"],
            "when": pd.to_datetime(["2024-01-01", None, "2024-01-03", "2024-01-04"]),
            "when_utc": pd.to_datetime(["2024-01-01"] * 4).tz_localize("UTC"),
            "objects_int": pd.Series([10, None, 30, 20], dtype=object),
        }
    )


# -- inference ----------------------------------------------------------------------------


def test_infer_types_of_every_dtype():
    schema = infer_schema(all_types_frame(), created_at=CREATED)
    types = {c.name: c.type for c in schema.columns}
    assert types == {
        "int": "int",
        "int_nullable": "int",
        "float": "float",
        "float_nullable": "float",
        "bool": "bool",
        "bool_nullable": "bool",
        "str_arrow": "category",
        "str_python": "category",
        "categorical": "category",
        "categorical_int": "category",
        "text": "string",
        "when": "datetime",
        "when_utc": "datetime",
        "objects_int": "int",
    }
    assert schema.names == tuple(all_types_frame().columns)
    assert all(c.required for c in schema.columns)


def test_infer_presence_ranges_and_domains():
    schema = infer_schema(all_types_frame(), created_at=CREATED)
    # 1 and 2 nulls of 4 rows: the 99.9% upper confidence bounds of the null rate, as scipy
    # computes them (Clopper-Pearson), rounded up; no nulls: none allowed, judged strictly.
    assert schema["int_nullable"].max_null_fraction == clopper_pearson_upper(1, 4) == 0.936
    assert schema["float_nullable"].max_null_fraction == clopper_pearson_upper(2, 4) == 0.987
    assert schema["int_nullable"].null_significance == 0.001
    assert schema["int"].max_null_fraction == 0.0 and schema["int"].null_significance == 0.0
    assert (schema["int"].min, schema["int"].max) == (1, 4)
    assert type(schema["int"].min) is int
    assert (schema["int_nullable"].min, schema["int_nullable"].max) == (-2, 7)
    assert (schema["objects_int"].min, schema["objects_int"].max) == (10, 30)
    # inf is left out of the range and allowed because it was seen.
    assert (schema["float"].min, schema["float"].max) == (-2.0, 0.5)
    assert type(schema["float"].min) is float
    assert schema["float"].allow_non_finite is True
    assert schema["float_nullable"].allow_non_finite is False
    assert schema["str_arrow"].domain == ("a", "b")
    assert schema["str_python"].domain == ("x", "y")
    assert schema["categorical"].domain == ("u", "v")
    assert schema["categorical_int"].domain == (1, 2)
    assert schema["text"].domain is None
    assert schema["bool"].min is None and schema["bool"].domain is None


def clopper_pearson_upper(nulls: int, rows: int) -> float:
    """scipy's exact two-sided 99.8% interval has the one-sided 99.9% upper bound."""
    high = binomtest(nulls, rows).proportion_ci(confidence_level=0.998, method="exact").high
    return math.ceil(high * 10_000) / 10_000


@pytest.mark.parametrize("nulls, rows", [(1, 3), (3, 10), (250, 5_000), (7, 100_000), (9, 9)])
def test_null_fraction_is_the_upper_confidence_bound_rounded_up(nulls, rows):
    values = np.where(np.arange(rows) < nulls, np.nan, 1.0)
    schema = infer_schema(pd.DataFrame({"x": values}))
    assert schema["x"].max_null_fraction == clopper_pearson_upper(nulls, rows)
    assert schema["x"].max_null_fraction >= nulls / rows
    assert validate(pd.DataFrame({"x": values}), schema).ok


def test_domain_is_dropped_above_max_categories():
    df = pd.DataFrame({"c": pd.Categorical(["a", "b", "c", "a"])})
    assert infer_schema(df, max_categories=3)["c"].domain == ("a", "b", "c")
    assert infer_schema(df, max_categories=2)["c"].domain is None


def test_domain_keeps_true_and_one_apart():
    df = pd.DataFrame({"c": pd.Series(["a", "a", 1, True, "a", "b"], dtype=object)})
    assert infer_schema(df)["c"].domain == ("a", "b", 1, True)


def test_infer_metadata_and_version():
    schema = infer_schema(all_types_frame(), created_at=CREATED)
    assert schema.version == 1
    assert schema.created_at == "2024-05-01T12:00:00+00:00"
    assert schema.source_rows == 4
    assert schema.environments == ()


def test_infer_environments():
    df = pd.DataFrame({"x": [1, 2], "label": [0, 1]})
    schema = infer_schema(df, environments={"training": [], "serving": ["label"]})
    assert schema.environments == ("training", "serving")
    assert schema["label"].absent_in == ("serving",)
    assert schema["x"].absent_in == ()


@pytest.mark.parametrize(
    ("frame", "kwargs", "error", "message"),
    [
        ([1, 2], {}, TypeError, "expects a pandas DataFrame"),
        (pd.DataFrame({"x": []}), {}, ValueError, "no rows"),
        (pd.DataFrame({0: [1]}), {}, TypeError, "column 0 is 0"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), {}, ValueError, "'a' appears more"),
        (pd.DataFrame({"x": [1]}), {"max_categories": -1}, ValueError, "max_categories"),
        (pd.DataFrame({"x": [1]}), {"environments": ["serving"]}, TypeError, "environments must"),
        (pd.DataFrame({"x": [1]}), {"environments": {"s": ["y"]}}, ValueError, "'y' is not"),
        (pd.DataFrame({"x": [1]}), {"environments": {"s": "x"}}, TypeError, "list of column"),
    ],
)
def test_infer_rejects_bad_arguments(frame, kwargs, error, message):
    with pytest.raises(error, match=message):
        infer_schema(frame, **kwargs)


# -- the model --------------------------------------------------------------------------


def test_column_schema_normalises_lists_and_numpy_scalars():
    column = ColumnSchema(
        "c", "category", max_null_fraction=np.float64(0.5), domain=[np.str_("a"), np.int64(2)]
    )
    assert column.domain == ("a", 2)
    assert type(column.domain[0]) is str and type(column.domain[1]) is int
    assert column.max_null_fraction == 0.5
    assert type(ColumnSchema("x", "int", min=np.int64(3)).min) is int


def test_editing_bumps_the_version_and_leaves_the_original_alone():
    schema = Schema((ColumnSchema("x", "int", min=0, max=10), ColumnSchema("y", "bool")))
    widened = schema.update_column("x", max=20)
    assert (widened.version, widened["x"].max, schema["x"].max) == (2, 20, 10)
    added = widened.with_column(ColumnSchema("z", "string"))
    assert (added.version, added.names) == (3, ("x", "y", "z"))
    replaced = added.with_column(ColumnSchema("y", "int"))
    assert (replaced.version, replaced["y"].type, replaced.names) == (4, "int", ("x", "y", "z"))
    dropped = replaced.without_column("x")
    assert (dropped.version, dropped.names) == (5, ("y", "z"))
    with_env = dropped.with_environment("serving", absent=["y"])
    assert (with_env.version, with_env.environments) == (6, ("serving",))
    assert with_env["y"].absent_in == ("serving",)
    assert schema.version == 1


def test_schema_as_a_table():
    schema = Schema((ColumnSchema("x", "int", min=0), ColumnSchema("c", "category", domain=["a"])))
    frame = schema.to_frame()
    assert frame["name"].tolist() == ["x", "c"]
    assert frame["min"].tolist() == [0, None]
    assert frame["domain"].tolist() == [None, ("a",)]
    assert "<table" in schema._repr_html_()


def test_editing_checks_the_edit():
    schema = Schema((ColumnSchema("x", "int", min=0, max=10),))
    with pytest.raises(ValueError, match="column 'x', field 'min': 5 is greater than max 1"):
        schema.update_column("x", min=5, max=1)
    with pytest.raises(KeyError, match="no column 'nope'"):
        schema.without_column("nope")
    with pytest.raises(ValueError, match="already exists"):
        schema.with_environment("a").with_environment("a")
    with pytest.raises(ValueError, match="defined more than once"):
        Schema((ColumnSchema("x", "int"), ColumnSchema("x", "float")))


# -- YAML and dict round trips ------------------------------------------------------------


def test_yaml_round_trip_is_equal():
    df = all_types_frame()
    schema = infer_schema(df, environments={"training": [], "serving": ["text"]})
    text = schema.to_yaml()
    assert Schema.from_yaml(text) == schema
    assert Schema.from_dict(schema.to_dict()) == schema
    json.dumps(schema.to_dict())


def test_yaml_keeps_value_types_that_yaml_would_reinterpret():
    column = ColumnSchema("c", "category", domain=("yes", "null", "1", "2.5", 1, 2.5, True, ""))
    schema = Schema((column,))
    back = Schema.from_yaml(schema.to_yaml())
    assert back["c"].domain == column.domain
    assert [type(v) for v in back["c"].domain] == [str, str, str, str, int, float, bool, str]


def test_yaml_is_readable_unicode_and_exact_for_characters_yaml_reads_as_line_breaks():
    readable = Schema((ColumnSchema("c", "category", domain=("ü", "日本")),))
    assert "domain: [ü, 日本]" in readable.to_yaml()
    for tricky in ("\x85", "a\u2028b", "\u2029", "tab\there", "\ufeffbom", "\x00"):
        schema = Schema((ColumnSchema("c", "category", domain=(tricky, "ü")),))
        assert Schema.from_yaml(schema.to_yaml()) == schema, repr(tricky)


def test_yaml_layout_is_one_block_per_column():
    schema = Schema(
        (
            ColumnSchema("age", "int", min=0, max=120),
            ColumnSchema("plan", "category", max_null_fraction=0.1, domain=("free", "pro")),
            ColumnSchema("label", "bool", absent_in=("serving",)),
        ),
        version=3,
        environments=("training", "serving"),
        created_at="2024-05-01T12:00:00+00:00",
        source_rows=10,
    )
    assert schema.to_yaml() == (
        "version: 3\n"
        "created_at: '2024-05-01T12:00:00+00:00'\n"
        "source_rows: 10\n"
        "environments: [training, serving]\n"
        "columns:\n"
        "  age:\n"
        "    type: int\n"
        "    required: true\n"
        "    max_null_fraction: 0.0\n"
        "    min: 0\n"
        "    max: 120\n"
        "  plan:\n"
        "    type: category\n"
        "    required: true\n"
        "    max_null_fraction: 0.1\n"
        "    domain: [free, pro]\n"
        "  label:\n"
        "    type: bool\n"
        "    required: true\n"
        "    max_null_fraction: 0.0\n"
        "    absent_in: [serving]\n"
    )


def test_from_yaml_reads_files(tmp_path: Path):
    schema = infer_schema(pd.DataFrame({"x": [1, 2]}), created_at=CREATED)
    path = tmp_path / "schema.yaml"
    path.write_text(schema.to_yaml(), encoding="utf-8")
    assert Schema.from_yaml(path) == schema
    assert Schema.from_yaml(str(path)) == schema


def test_hand_written_yaml_with_defaults_and_a_bare_timestamp():
    schema = Schema.from_yaml(
        "created_at: 2024-05-01 12:00:00\ncolumns:\n  x:\n    type: float\n    max: 2\n"
    )
    assert schema.version == 1
    assert schema.created_at == "2024-05-01T12:00:00"
    assert schema["x"] == ColumnSchema("x", "float", max=2)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("columns: {}\nowner: me", ValueError, "schema: unknown key 'owner'"),
        ("version: 2", ValueError, "key 'columns' is missing"),
        ("- x", TypeError, "mapping at the top level"),
        ("columns: [x, y]", TypeError, "key 'columns': expected a mapping"),
        ("columns: {x: int}", TypeError, "column 'x': expected a mapping of fields"),
        ("columns: {1: {type: int}}", TypeError, "column names must be strings"),
        (
            "columns: {x: {type: int, maximum: 3}}",
            ValueError,
            "column 'x': unknown field 'maximum'",
        ),
        ("columns: {x: {required: true}}", ValueError, "column 'x': field 'type' is missing"),
        ("columns: {x: {type: integer}}", ValueError, "column 'x', field 'type': 'integer' is not"),
        ("columns: {x: {type: int, required: 'yes'}}", TypeError, "column 'x', field 'required'"),
        (
            "columns: {x: {type: int, max_null_fraction: 1.5}}",
            ValueError,
            r"column 'x', field 'max_null_fraction': 1.5 is outside \[0, 1\]",
        ),
        (
            "columns: {x: {type: int, max_null_fraction: -0.1}}",
            ValueError,
            "column 'x', field 'max_null_fraction'",
        ),
        (
            "columns: {x: {type: int, max_null_fraction: '0.1'}}",
            TypeError,
            "column 'x', field 'max_null_fraction': expected a number",
        ),
        (
            "columns: {x: {type: int, min: 5, max: 1}}",
            ValueError,
            "column 'x', field 'min': 5 is greater than max 1",
        ),
        ("columns: {x: {type: int, min: ten}}", TypeError, "column 'x', field 'min'"),
        ("columns: {x: {type: float, max: .inf}}", ValueError, "column 'x', field 'max'"),
        ("columns: {x: {type: string, min: 0}}", ValueError, "column 'x', field 'min': a range"),
        ("columns: {x: {type: int, domain: [1]}}", ValueError, "column 'x', field 'domain'"),
        ("columns: {x: {type: category, domain: a}}", TypeError, "column 'x', field 'domain'"),
        ("columns: {x: {type: category, domain: [a, a]}}", ValueError, "'a' is listed twice"),
        ("columns: {x: {type: category, domain: [[1]]}}", TypeError, "column 'x', field 'domain'"),
        (
            "columns: {x: {type: int, allow_non_finite: true}}",
            ValueError,
            "column 'x', field 'allow_non_finite'",
        ),
        (
            "environments: [training]\ncolumns: {x: {type: int, absent_in: [serving]}}",
            ValueError,
            "column 'x', field 'absent_in': 'serving' is not one of",
        ),
        ("version: 0\ncolumns: {}", ValueError, "field 'version': must be at least 1"),
        ("version: '2'\ncolumns: {}", TypeError, "field 'version': expected an integer"),
        ("source_rows: -1\ncolumns: {}", ValueError, "field 'source_rows'"),
        ("environments: serving\ncolumns: {}", TypeError, "key 'environments'"),
        ("columns: {x: {type: int}\n", ValueError, "not valid YAML"),
        (
            "columns:\n  x: {type: int}\n  x: {type: float}\n",
            ValueError,
            r"'x' appears twice \(line 3",
        ),
        ("columns: {x: {type: int, min: 1, min: 2}}", ValueError, "'min' appears twice"),
    ],
)
def test_hand_edited_yaml_errors_name_column_and_field(text, error, message):
    with pytest.raises(error, match=message):
        Schema.from_yaml(text)


# -- property: a frame passes its own inferred schema -----------------------------------------

_labels = st.sampled_from(["a", "b", "c", "yes", "1", "ü"])


@st.composite
def frames(draw) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=12))

    def cells(values):
        return draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n))

    ints = cells(st.integers(-(2**40), 2**40))
    floats = cells(st.floats(allow_nan=True, allow_infinity=True, width=64))
    bools = cells(st.booleans())
    labels = cells(_labels)
    words = cells(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8))
    non_null_ints = draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n))
    return pd.DataFrame(
        {
            "i64": np.array(non_null_ints, dtype=np.int64),
            "Int64": pd.array(ints, dtype="Int64"),
            "f64": np.array([np.nan if v is None else v for v in floats], dtype=np.float64),
            "Float64": pd.array(
                [None if v is None or not np.isfinite(v) else v for v in floats], dtype="Float64"
            ),
            "boolean": pd.array(bools, dtype="boolean"),
            "str_arrow": pd.array(labels, dtype="string[pyarrow]"),
            "str_python": pd.array(words, dtype="string[python]"),
            "categorical": pd.Categorical(labels),
            "objects": pd.Series(ints, dtype=object),
            "dates": pd.to_datetime(
                [
                    None if v is None else dt.datetime(2024, 1, 1) + dt.timedelta(days=v % 400)
                    for v in non_null_ints
                ]
            ),
        }
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_a_frame_satisfies_its_own_inferred_schema(df):
    schema = infer_schema(df, created_at=CREATED)
    result = validate(df, schema)
    assert result.ok, str(result)
    assert Schema.from_yaml(schema.to_yaml()) == schema
