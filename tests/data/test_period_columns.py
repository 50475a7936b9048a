"""Period columns are profiled and tested for drift as the times their periods start;
complex columns are refused by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.stats import ks_2samp

from opsloop.data.drift import compare
from opsloop.data.profile import profile


@pytest.fixture
def quarters() -> pd.DataFrame:
    """US macro data: each row's quarter as a Period, with real GDP."""
    data = sm.datasets.macrodata.load_pandas().data
    labels = [f"{int(y)}Q{int(q)}" for y, q in zip(data["year"], data["quarter"], strict=True)]
    return pd.DataFrame({"quarter": pd.PeriodIndex(labels, freq="Q"), "realgdp": data["realgdp"]})


def test_a_period_column_drifts_as_the_times_its_periods_start(quarters):
    ref, cur = quarters.iloc[:120], quarters.iloc[100:]
    result = compare(ref, cur)
    column = result["quarter"]
    seconds = [
        (part["quarter"].dt.start_time - pd.Timestamp(0)).dt.total_seconds() for part in (ref, cur)
    ]
    expected = ks_2samp(*seconds)
    assert column.test == "ks"
    assert column.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert column.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    # Read as text, 1959Q1 .. 1988Q4 and 1984Q1 .. 2009Q3 have the same length: no drift.
    assert column.drifted and result.to_dict()["columns"][0]["kind"] == "datetime"


def test_a_period_column_is_profiled_as_dates(quarters):
    column = profile(quarters).to_frame().loc["quarter"]
    assert column["type"] == "datetime"
    assert (column["min"], column["max"]) == (
        "1959-01-01T00:00:00+00:00",
        "2009-07-01T00:00:00+00:00",
    )
    months = pd.Series([pd.Period("2024-03", "M"), None, pd.Period("2024-01", "M")], dtype=object)
    held = profile(pd.DataFrame({"m": months}))["m"]
    assert (held.logical_type, held.null_count, held.numeric.minimum) == (
        "datetime",
        1,
        pd.Timestamp("2024-01-01", tz="UTC").timestamp(),
    )


def test_a_complex_column_is_refused_by_profile_naming_it(quarters):
    frame = quarters.assign(impedance=quarters["realgdp"] * (1 + 1j))
    message = "column 'impedance' holds complex numbers, which have no order to profile or test"
    with pytest.raises(ValueError, match=message):
        profile(frame)
    objects = pd.DataFrame({"z": np.array([1 + 1j, None], dtype=object)})
    with pytest.raises(ValueError, match="column 'z' holds complex numbers"):
        profile(objects)


def _start_seconds(year: int, month: int) -> float:
    import datetime

    return (datetime.datetime(year, month, 1) - datetime.datetime(1970, 1, 1)).total_seconds()


def test_a_far_future_period_column_is_read_without_nanosecond_timestamps():
    months = pd.period_range("2999-01", periods=60, freq="M")  # 2999-01 .. 3003-12
    frame = pd.DataFrame({"month": months})
    ref, cur = frame.iloc[:30], frame.iloc[25:]
    seconds = [[_start_seconds(p.year, p.month) for p in part["month"]] for part in (ref, cur)]
    column = compare(ref, cur)["month"]
    expected = ks_2samp(*seconds)
    assert column.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert column.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    held = profile(frame)["month"]
    assert (held.numeric.minimum, held.numeric.maximum) == (
        _start_seconds(2999, 1),
        _start_seconds(3003, 12),
    )


def test_periods_of_several_frequencies_compare_as_the_seconds_they_start():
    mixed = pd.Series(
        [pd.Period("2024Q2", "Q"), pd.Period("2024-05", "M"), None, pd.Period("2024-04-01", "D")],
        dtype=object,
    )
    held = profile(pd.DataFrame({"p": mixed}))["p"]
    # 2024Q2 and 2024-04-01 start on the same second, 2024-05 a month later.
    assert (held.logical_type, held.null_count) == ("datetime", 1)
    assert (held.numeric.minimum, held.numeric.maximum) == (
        _start_seconds(2024, 4),
        _start_seconds(2024, 5),
    )


def test_periods_finer_than_a_second_keep_their_resolution():
    # Two halves of one second of millisecond periods: read at the second, they would be
    # one value and no drift; each period's own millisecond separates them completely.
    stamps = pd.period_range("2024-03-05 10:11:12", periods=1000, freq="ms")
    frame = pd.DataFrame({"at": stamps})
    ref, cur = frame.iloc[:500], frame.iloc[500:]
    column = compare(ref, cur)["at"]
    seconds = [
        (part["at"].dt.start_time - pd.Timestamp(0)).dt.total_seconds() for part in (ref, cur)
    ]
    expected = ks_2samp(*seconds)
    assert column.statistic == pytest.approx(expected.statistic, abs=1e-12) == 1.0
    assert column.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    mixed = pd.Series([pd.Period("2024-03-05 10:11:12.250", "ms"), pd.Period("2024-03-05", "D")])
    held = profile(pd.DataFrame({"p": mixed}))["p"]
    day = (pd.Timestamp("2024-03-05") - pd.Timestamp(0)).total_seconds()
    assert (held.numeric.minimum, held.numeric.maximum) == (day, day + 36672.25)


def test_a_complex_column_is_left_out_of_a_comparison_with_its_reason(quarters):
    frame = quarters.assign(impedance=quarters["realgdp"] * (1 + 1j))
    ref, cur = frame.iloc[:120], frame.iloc[100:]
    with pytest.warns(UserWarning, match="columns not compared: 'impedance' holds complex"):
        result = compare(ref, cur)
    # The other columns are compared as without it: realgdp by KS on its values.
    assert [c.column for c in result.columns] == ["quarter", "realgdp"]
    expected = ks_2samp(ref["realgdp"], cur["realgdp"])
    assert result["realgdp"].statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result["realgdp"].p_value == pytest.approx(expected.pvalue, rel=1e-9)
    reason = (
        "holds complex numbers, which have no order to test; split it into its real and "
        "imaginary parts (or modulus and angle) and compare those (in reference)"
    )
    assert result.skipped == (("impedance", reason),)
    assert result.to_dict()["skipped"] == [{"column": "impedance", "reason": reason}]
    assert result.to_dict()["dataset"]["n_skipped"] == 1
    # Complex on the current side only (an object column of them): named with that side.
    current = cur.assign(impedance=pd.Series(list(cur["realgdp"] * 1j), index=cur.index))
    with pytest.warns(UserWarning):
        only_current = compare(quarters.assign(impedance=quarters["realgdp"]), current)
    assert only_current.skipped == (("impedance", reason.replace("reference", "current")),)


def test_a_schema_types_a_period_column_as_dates_and_validates_the_same_frame(quarters):
    from opsloop.data.schema import infer_schema, validate

    schema = infer_schema(quarters)
    assert schema["quarter"].type == "datetime"
    assert validate(quarters, schema).ok
    # The same instants as timestamps get the same schema and the same verdict.
    dated = quarters.assign(quarter=quarters["quarter"].dt.start_time)
    assert infer_schema(dated)["quarter"] == schema["quarter"]
    assert validate(dated, schema).ok
    # An object column of periods of several frequencies, and periods past 2262, are dates.
    far = pd.DataFrame({"quarter": pd.period_range("3000Q1", periods=4, freq="Q")})
    assert validate(far.assign(realgdp=quarters["realgdp"].iloc[:4].to_numpy()), schema).ok
    mixed = pd.Series([pd.Period("2024Q2", "Q"), pd.Period("2024-05", "M")], dtype=object)
    assert infer_schema(pd.DataFrame({"p": mixed}))["p"].type == "datetime"


def test_periods_break_a_date_schema_as_dates_do(quarters):
    from opsloop.data.schema import Schema, infer_schema, validate

    schema = infer_schema(quarters)
    # Nulls where the training data had none, and text in a date column.
    broken = quarters["quarter"].astype(object)
    broken.iloc[[3, 8]] = None
    broken.iloc[5] = "1960Q2"
    found = validate(quarters.assign(quarter=broken), schema)
    as_dates = broken.map(lambda p: p.start_time if isinstance(p, pd.Period) else p)
    expected = validate(quarters.assign(quarter=as_dates), schema)
    kinds = [(a.column, a.kind, a.count, a.detail) for a in found]
    assert kinds == [(a.column, a.kind, a.count, a.detail) for a in expected]
    assert kinds == [
        ("quarter", "type_mismatch", 1, "expected datetime, found str ×1"),
        (
            "quarter",
            "null_fraction_exceeded",
            2,
            f"{2 / len(quarters) * 100:.4g}% of the rows are null, above max_null_fraction 0%",
        ),
    ]
    # Examples show the periods as they are in the frame.
    assert found.anomalies[1].examples == ((3, None), (8, None))
    # A schema written before, which typed the column as text, still loads; it now finds
    # dates where it expects text.
    older = Schema.from_yaml(schema.to_yaml().replace("type: datetime", "type: string"))
    (mismatch,) = validate(quarters, older)
    assert (mismatch.kind, mismatch.count) == ("type_mismatch", len(quarters))
    assert mismatch.detail == "expected string, found datetime ×203"
    assert mismatch.examples[0] == (0, "1959Q1")
