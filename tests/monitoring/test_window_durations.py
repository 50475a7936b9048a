"""Duration and date features through monitoring windows, on statsmodels' Grunfeld
investment data: a window's inputs come back from the events as text, and are read as the
reference read them (seconds), so their drift is scipy's Kolmogorov-Smirnov test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from opsloop.monitoring import evaluate, log_predictions, set_reference

from .conftest import HOUR_MS, T0


def grunfeld() -> pd.DataFrame:
    frame = sm.datasets.grunfeld.load_pandas().data
    # The investment as a duration (one second per unit), the year as a date.
    frame["spent"] = pd.to_timedelta(frame["invest"], unit="s")
    frame["year"] = pd.to_datetime(frame["year"].astype(int).astype(str) + "-07-01 12:30:00")
    return frame[["value", "spent", "year"]]


def test_a_duration_feature_drifts_as_ks_on_its_seconds(db, clock):
    frame = grunfeld()
    before, after = frame.iloc[::2], frame.iloc[1::2].copy()
    after["spent"] = after["spent"] * 3
    window = after.astype({"spent": object})
    window.loc[window.index[:4], "spent"] = "soon"  # no duration: counted invalid
    set_reference(db, "invest", before)
    log_predictions(
        db, "invest", window, np.zeros(len(window)), at_ms=T0 + np.arange(len(window)) * 1000
    )
    clock.now_ms = T0 + HOUR_MS
    (result,) = evaluate(db, "invest")
    spent = result.metrics["drift"]["spent"]
    expected = stats.ks_2samp(
        before["spent"].dt.total_seconds(), after["spent"].iloc[4:].dt.total_seconds()
    )
    assert spent["test"] == "ks"
    assert spent["n_current"] == len(after) - 4
    assert spent["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert spent["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert spent["drifted"]


def test_dates_written_two_ways_in_one_window_are_all_read(db, clock):
    frame = grunfeld()
    before, after = frame.iloc[::2], frame.iloc[1::2]
    window = after.copy()
    half = len(window) // 2
    text = window["year"].dt.strftime("%Y-%m-%d %H:%M:%S").astype(object)
    text.iloc[:half] = window["year"].iloc[:half].dt.strftime("%Y-%m-%dT%H:%M:%S")
    window["year"] = text
    set_reference(db, "invest", before)
    log_predictions(
        db, "invest", window, np.zeros(len(window)), at_ms=T0 + np.arange(len(window)) * 1000
    )
    clock.now_ms = T0 + HOUR_MS
    (result,) = evaluate(db, "invest")
    year = result.metrics["drift"]["year"]
    epoch = pd.Timestamp("1970-01-01")
    expected = stats.ks_2samp(
        (before["year"] - epoch).dt.total_seconds(), (after["year"] - epoch).dt.total_seconds()
    )
    assert year["n_current"] == len(after)
    assert year["statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert year["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
