"""A reference with dates and categories, on statsmodels' Grunfeld investment data: kept
(its sample's dates and durations round-trip as their dtypes) and compared with the
windows as drift.compare compares the frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from opsloop.data import drift
from opsloop.data.row_sample import RowSample
from opsloop.monitoring import evaluate, log_labels, log_predictions, set_reference

from .conftest import HOUR_MS, T0

FEATURES = ["value", "capital", "firm", "year"]


def grunfeld() -> pd.DataFrame:
    frame = sm.datasets.grunfeld.load_pandas().data
    frame["firm"] = pd.Categorical(frame["firm"].astype(str))
    frame["year"] = pd.to_datetime(frame["year"].astype(int).astype(str) + "-01-01")
    return frame


def test_a_sample_of_dates_and_durations_round_trips_with_its_dtypes():
    frame = grunfeld()
    frame["since_1935"] = frame["year"] - pd.Timestamp("1935-01-01")
    frame["year_utc"] = frame["year"].dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    frame.loc[3, ["year", "since_1935", "year_utc"]] = None
    ids = [f"r{i}" for i in range(len(frame))]
    sample = RowSample.of(frame, ids, size=50, seed=3)
    again = RowSample.from_bytes(sample.to_bytes())
    pd.testing.assert_frame_equal(
        again.frame().drop(columns="firm"), sample.frame().drop(columns="firm")
    )
    assert again.frame()["firm"].tolist() == sample.frame()["firm"].astype(str).tolist()


def test_a_reference_with_dates_drifts_as_compare_says(db, clock):
    frame = grunfeld()
    before, after = frame[frame["year"].dt.year < 1945], frame[frame["year"].dt.year >= 1945]
    set_reference(
        db, "invest", before[FEATURES], predictions=before["invest"].to_numpy(),
        labels=before["invest"].to_numpy(),
    )  # fmt: skip
    ids = log_predictions(
        db, "invest", after[FEATURES], after["invest"].to_numpy(),
        at_ms=T0 + np.arange(len(after)) * 1000,
    )  # fmt: skip
    log_labels(db, "invest", ids, (after["invest"] * 1.2).to_numpy())
    clock.now_ms = T0 + HOUR_MS
    (window,) = evaluate(db, "invest")
    expected = drift.compare(before[FEATURES], after[FEATURES])
    drifted = sorted(c.column for c in expected.columns if c.drifted)
    assert drifted == ["capital", "year"]
    assert window.metrics["drift_share"] == len(drifted) / len(FEATURES)
    residuals = after["invest"] * 1.2 - after["invest"]  # label minus prediction
    assert window.metrics["residual_mean"] == residuals.mean()
