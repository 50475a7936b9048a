"""Durations (timedelta columns) are profiled as durations: statistics of their seconds,
as drift compares them, not the text of their values."""

import datetime
import io
import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from typer.testing import CliRunner

from opsloop.data.drift.summary import summarize
from opsloop.data.profile import Profile, profile

SECONDS_PER_YEAR = 365.25 * 86_400


@pytest.fixture
def married() -> pd.DataFrame:
    """statsmodels' fair data: years married as a duration, a day's jitter, some missing."""
    fair = sm.datasets.fair.load_pandas().data
    rng = np.random.default_rng(11)
    seconds = fair["yrs_married"].to_numpy() * SECONDS_PER_YEAR + rng.uniform(0, 86_400, len(fair))
    married_for = pd.Series(pd.to_timedelta(seconds, unit="s"))
    married_for.iloc[::97] = pd.NaT
    return pd.DataFrame({"married_for": married_for, "rate": fair["rate_marriage"]})


def test_a_duration_column_is_profiled_as_its_seconds(married):
    column = profile(married)["married_for"]
    seconds = married["married_for"].dt.total_seconds().dropna().to_numpy()
    assert column.logical_type == "duration"
    assert (column.count, column.null_count, column.invalid_count) == (
        len(married),
        married["married_for"].isna().sum(),
        0,
    )
    numeric = column.numeric
    assert numeric.count == seconds.size
    assert (numeric.minimum, numeric.maximum) == (seconds.min(), seconds.max())
    assert numeric.sum == pytest.approx(seconds.sum(), rel=1e-15)
    assert numeric.mean == pytest.approx(seconds.mean(), rel=1e-13)
    assert numeric.std() == pytest.approx(seconds.std(ddof=1), rel=1e-10)
    # The same seconds drift compares: its sorted sample is the profile's values.
    sample = summarize(married["married_for"], "numeric").sample.values
    assert (sample.min(), sample.max(), sample.size) == (
        numeric.minimum,
        numeric.maximum,
        numeric.count,
    )


def test_the_table_and_the_json_show_the_seconds(married):
    whole = profile(married)
    row = whole.to_frame().loc["married_for"]
    seconds = married["married_for"].dt.total_seconds()
    assert row["type"] == "duration"
    assert (row["min"], row["max"]) == (seconds.min(), seconds.max())
    assert row["mean"] == pytest.approx(seconds.mean(), rel=1e-13)
    assert row["std"] == pytest.approx(seconds.std(), rel=1e-10)
    assert row["distinct"] is None and row["mean_length"] is None
    document = whole.to_dict()["columns"]["married_for"]
    assert document["type"] == "duration" and "numeric" not in document
    assert document["seconds"]["min"] == row["min"]
    assert document["seconds"]["mean"] == row["mean"]


def test_duration_profiles_merge_and_serialise(married):
    whole = profile(married)
    halves = profile(married.iloc[:3000]).merge(profile(married.iloc[3000:]))
    merged, column = halves["married_for"], whole["married_for"]
    assert merged.logical_type == "duration"
    assert (merged.null_count, merged.numeric.sum) == (column.null_count, column.numeric.sum)
    assert merged.numeric.mean == pytest.approx(column.numeric.mean, rel=1e-14)
    assert Profile.from_bytes(halves.to_bytes()).to_dict() == halves.to_dict()
    # A side with no value takes the other's type; a number does not merge with a duration.
    empty = profile(pd.DataFrame({"married_for": [None, None]}))
    assert empty.merge(whole)["married_for"].logical_type == "duration"
    with pytest.raises(ValueError, match="is duration in one profile and float"):
        whole.merge(profile(pd.DataFrame({"married_for": [1.5]})))


def test_arrow_and_object_durations_are_durations_too(married):
    arrow = married.assign(married_for=married["married_for"].astype("duration[ns][pyarrow]"))
    exact = ("count", "min", "max", "sum", "mean", "variance")  # not the sketched quantiles
    seen, expected = (
        profile(frame).to_dict()["columns"]["married_for"] for frame in (arrow, married)
    )
    assert seen["type"] == "duration"
    assert [seen["seconds"][k] for k in exact] == [expected["seconds"][k] for k in exact]
    held = pd.Series(
        [datetime.timedelta(hours=1), None, pd.Timedelta(minutes=90), np.timedelta64(30, "m")],
        dtype=object,
    )
    column = profile(pd.DataFrame({"d": held}))["d"]
    assert (column.logical_type, column.null_count) == ("duration", 1)
    assert (column.numeric.minimum, column.numeric.maximum, column.numeric.sum) == (
        1800.0,
        5400.0,
        10800.0,
    )


def test_a_dask_frame_of_durations_profiles_as_in_memory(married):
    import dask
    import dask.dataframe as dd

    with dask.config.set(scheduler="synchronous"):
        on_dask = profile(dd.from_pandas(married, npartitions=4))
    column, expected = on_dask["married_for"], profile(married)["married_for"]
    assert column.logical_type == "duration"
    assert (column.null_count, column.numeric.sum, column.numeric.minimum) == (
        expected.null_count,
        expected.numeric.sum,
        expected.numeric.minimum,
    )


def test_opsloop_profile_shows_a_duration_column_in_seconds(married, tmp_path):
    from opsloop.cli.app import app

    runner = CliRunner()
    path = tmp_path / "married.parquet"
    married.to_parquet(path)
    seconds = married["married_for"].dt.total_seconds()
    document = json.loads(runner.invoke(app, ["profile", str(path), "--json"]).output)
    column = document["columns"]["married_for"]
    assert (column["type"], column["seconds"]["max"]) == ("duration", seconds.max())
    result = runner.invoke(app, ["profile", str(path), "--format", "csv"])
    assert result.exit_code == 0, result.output
    shown = pd.read_csv(io.StringIO(result.output)).set_index("column")
    assert shown.loc["married_for", "type"] == "duration"
    assert shown.loc["married_for", "max"] == pytest.approx(seconds.max(), rel=1e-12)
    assert shown.loc["married_for", "mean"] == pytest.approx(seconds.mean(), rel=1e-12)
    table = runner.invoke(app, ["profile", str(path)]).output
    row = next(line for line in table.splitlines() if line.startswith("│ married_for"))
    assert "duration" in row and f"{seconds.max():.4g}" in row


def test_a_profile_that_holds_durations_as_text_must_be_rebuilt(married):
    # A profile saved before durations were profiled as such holds their text.
    as_text = married.assign(married_for=married["married_for"].astype(str).astype(object))
    saved = Profile.from_bytes(profile(as_text).to_bytes())
    assert saved["married_for"].logical_type in ("string", "category")
    with pytest.raises(ValueError, match=r"saved before durations were profiled .* rebuild it"):
        saved.merge(profile(married))
    with pytest.raises(ValueError, match="rebuild it"):
        profile(married).merge(saved)


def test_an_object_column_of_mostly_durations_counts_the_rest_invalid():
    # As an object column of mostly datetimes: the most common kind of value wins.
    hours = [datetime.timedelta(hours=h) for h in range(9)]
    mixed = pd.Series([*hours, "1 hour"], dtype=object)
    whole = profile(pd.DataFrame({"d": mixed}))["d"]
    assert (whole.logical_type, whole.invalid_count) == ("duration", 1)
    assert whole.numeric.sum == sum(h * 3600.0 for h in range(9))
    halves = profile(pd.DataFrame({"d": mixed.iloc[:5]})).merge(
        profile(pd.DataFrame({"d": mixed.iloc[5:]}))
    )["d"]
    assert (halves.logical_type, halves.invalid_count, halves.numeric.sum) == (
        "duration",
        1,
        whole.numeric.sum,
    )
    # Fewer durations than numbers: a number column, the durations invalid.
    numbers = pd.Series([1, 2, 3, datetime.timedelta(hours=1)], dtype=object)
    assert profile(pd.DataFrame({"d": numbers}))["d"].logical_type == "int"


def test_a_duration_past_pandas_range_is_read_with_its_own_seconds():
    # pandas' Timedelta ends near 292 years; a datetime.timedelta reaches 999_999_999 days.
    longest = datetime.timedelta(days=999_999_999)
    held = pd.Series(
        [longest, datetime.timedelta(hours=1), np.timedelta64(2**62, "s")], dtype=object
    )
    column = profile(pd.DataFrame({"d": held}))["d"]
    assert (column.logical_type, column.invalid_count) == ("duration", 0)
    assert (column.numeric.minimum, column.numeric.maximum) == (3600.0, 2.0**62)
    assert column.numeric.sum == 3600.0 + 999_999_999 * 86_400.0 + 2.0**62
