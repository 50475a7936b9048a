"""Durations (timedelta columns) on statsmodels' fair data: compared as seconds, not as the
length of their text."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from opsloop.data import drift

SECONDS_PER_YEAR = 365.25 * 86_400


def married_for():
    fair = sm.datasets.fair.load_pandas().data
    years = fair["yrs_married"]
    return pd.DataFrame({"married_for": pd.to_timedelta(years * SECONDS_PER_YEAR, unit="s")})


def test_a_duration_column_of_few_levels_is_compared_as_counts_of_seconds():
    frame = married_for()
    reference, current = frame.iloc[:3000], frame.iloc[3000:]
    result = drift.compare(reference, current)
    column = result["married_for"]
    seconds = frame["married_for"].dt.total_seconds().to_numpy()
    # fair's yrs_married has seven levels: a discrete column, tested by chi-square on counts.
    levels, ref_counts = np.unique(seconds[:3000], return_counts=True)
    cur_counts = np.array([np.sum(seconds[3000:] == level) for level in levels])
    chi2 = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]), correction=False)
    assert column.kind == "discrete"
    assert column.test == "chi2"
    assert (column.statistic, column.p_value) == (chi2.statistic, chi2.pvalue)


def test_durations_twice_as_long_drift():
    frame = married_for()
    rng = np.random.default_rng(7)
    jitter = pd.to_timedelta(rng.uniform(0, 86_400, len(frame)), unit="s")
    reference = pd.DataFrame({"married_for": frame["married_for"] + jitter})
    current = pd.DataFrame({"married_for": reference["married_for"] * 2})
    result = drift.compare(reference, current)
    column = result["married_for"]
    ref_s = reference["married_for"].dt.total_seconds().to_numpy()
    expected = stats.ks_2samp(ref_s, ref_s * 2)
    assert column.kind == "numeric"
    assert (column.statistic, column.p_value) == (expected.statistic, expected.pvalue)
    assert column.drifted
    assert column.effect == pytest.approx(
        stats.wasserstein_distance(ref_s, ref_s * 2) / np.std(ref_s), rel=1e-12
    )


def test_arrow_backed_durations_are_compared_as_seconds_and_kept_in_a_sample():
    from opsloop.data.row_sample import RowSample

    fair = sm.datasets.fair.load_pandas().data
    # Hours of affairs per year as a duration.
    spent = pd.to_timedelta(fair["affairs"] * 3600, unit="s").astype("duration[ns][pyarrow]")
    frame = pd.DataFrame({"spent": spent})
    reference, current = frame.iloc[:3000], frame.iloc[3000:]
    column = drift.compare(reference, current)["spent"]
    # The same test and figures as the seconds themselves (a discrete column: chi-square).
    hours = pd.DataFrame({"spent": fair["affairs"] * 3600})
    expected = drift.compare(hours.iloc[:3000], hours.iloc[3000:])["spent"]
    assert column.kind == expected.kind != "text"
    assert (column.test, column.statistic) == (expected.test, expected.statistic)
    sample = RowSample.of(frame.iloc[:20], [f"r{i}" for i in range(20)], size=20, seed=0)
    again = RowSample.from_bytes(sample.to_bytes()).frame()["spent"]
    assert str(again.dtype) == "timedelta64[ns]"
    assert again.dt.total_seconds().tolist() == sample.frame()["spent"].dt.total_seconds().tolist()


def test_arrow_durations_longer_than_104_days_are_compared_as_seconds():
    # 2**53 nanoseconds is 104 days: Arrow's own total_seconds refuses longer durations.
    frame = married_for()
    arrow = frame.astype({"married_for": "duration[ns][pyarrow]"})
    column = drift.compare(arrow.iloc[:3000], arrow.iloc[3000:])["married_for"]
    expected = drift.compare(frame.iloc[:3000], frame.iloc[3000:])["married_for"]
    assert (column.kind, column.test) == (expected.kind, expected.test) == ("discrete", "chi2")
    assert (column.statistic, column.p_value) == (expected.statistic, expected.p_value)
