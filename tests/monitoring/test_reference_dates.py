"""A reference with dates and categories, on statsmodels' Grunfeld investment data: kept
(its sample's dates and durations round-trip as their dtypes) and compared with the
windows as drift.compare compares the frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
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


def _round_trip(frame: pd.DataFrame) -> pd.DataFrame:
    ids = [f"r{i}" for i in range(len(frame))]
    sample = RowSample.of(frame, ids, size=len(frame), seed=0)
    return RowSample.from_bytes(sample.to_bytes()).frame(), sample.frame()


def test_any_named_or_fixed_zone_round_trips_as_the_same_instants():
    import datetime

    from dateutil import tz as dateutil_tz

    years = grunfeld()["year"].iloc[:40]
    zones = {
        "dateutil": dateutil_tz.gettz("Europe/Paris"),
        "fixed": datetime.timezone(datetime.timedelta(hours=-5, minutes=-30)),
        "dateutil_offset": dateutil_tz.tzoffset(None, 3600),
        "dateutil_utc": dateutil_tz.tzutc(),
    }
    frame = pd.DataFrame(
        {k: years.dt.tz_localize("UTC").dt.tz_convert(z) for k, z in zones.items()}
    )
    frame.loc[2, "dateutil"] = None
    again, before = _round_trip(frame)
    for name in zones:
        # The same instants, and the same wall-clock times in the zone read back.
        assert again[name].isna().tolist() == before[name].isna().tolist()
        kept = before[name].notna()
        assert (again[name][kept] == before[name][kept]).all()
        assert again[name].dt.strftime("%Y-%m-%d %H:%M%z").tolist() == (
            before[name].dt.strftime("%Y-%m-%d %H:%M%z").tolist()
        )
    assert str(again["dateutil"].dt.tz) == "Europe/Paris"


def test_a_zone_without_a_name_is_refused_when_written_naming_the_column():
    from dateutil import tz as dateutil_tz

    years = grunfeld()["year"].iloc[:5]
    frame = pd.DataFrame({"local": years.dt.tz_localize(dateutil_tz.tzlocal())})
    sample = RowSample.of(frame, [f"r{i}" for i in range(5)], size=5, seed=0)
    with pytest.raises(ValueError, match=r"column 'local': its time zone tzlocal\(\) has no IANA"):
        sample.to_bytes()


def test_python_dates_and_long_durations_round_trip():
    import datetime

    frame = pd.DataFrame(
        {
            "day": [datetime.date(2024, 1, 1), None, datetime.date(1999, 12, 31)],
            "at": [datetime.datetime(2024, 1, 1, 8), pd.Timestamp("2024-02-01 09:30"), None],
            "took": [datetime.timedelta(minutes=3), None, datetime.timedelta(days=2)],
        }
    )
    # 30 000 years does not fit nanoseconds (about 292 years either side of 1970).
    frame["long"] = pd.Series(np.array([30_000 * 365 * 86_400, 5, "NaT"], dtype="m8[s]"))
    again, before = _round_trip(frame)
    for name in ("day", "at"):
        assert again[name].dtype.kind == "M"
        pd.testing.assert_series_equal(again[name], pd.to_datetime(before[name]))
    pd.testing.assert_series_equal(again["took"], pd.to_timedelta(before["took"]))
    assert str(again["long"].dtype) == "timedelta64[s]"
    assert again["long"].to_numpy().astype("int64").tolist() == (
        before["long"].to_numpy().astype("int64").tolist()
    )
    assert 30_000 * 365 * 86_400 in again["long"].to_numpy().astype("int64").tolist()
    assert again[["day", "at", "took", "long"]].isna().sum().tolist() == [1, 1, 1, 1]


def test_a_column_mixing_dates_with_other_values_is_refused_naming_it():
    import datetime

    frame = pd.DataFrame({"when": [datetime.date(2024, 1, 1), "soon"], "x": [1.0, 2.0]})
    sample = RowSample.of(frame, ["a", "b"], size=2, seed=0)
    with pytest.raises(ValueError, match=r"column 'when' mixes dates with other values"):
        sample.to_bytes()
    odd = RowSample.of(pd.DataFrame({"blob": [b"\x00", b"\x01"]}), ["a", "b"], size=2, seed=0)
    with pytest.raises(ValueError, match=r"column 'blob' holds values that cannot be kept.*bytes"):
        odd.to_bytes()


def test_a_dateutil_zone_reference_is_evaluated_as_compare_says(db, clock):
    from dateutil import tz as dateutil_tz

    frame = grunfeld()
    frame["year"] = frame["year"].dt.tz_localize(dateutil_tz.gettz("Europe/Paris"))
    before, after = frame[frame["year"].dt.year < 1945], frame[frame["year"].dt.year >= 1945]
    set_reference(db, "invest", before[FEATURES])
    log_predictions(
        db, "invest", after[FEATURES], after["invest"].to_numpy(),
        at_ms=T0 + np.arange(len(after)) * 1000,
    )  # fmt: skip
    clock.now_ms = T0 + HOUR_MS
    (window,) = evaluate(db, "invest")
    expected = drift.compare(before[FEATURES], after[FEATURES])
    assert window.metrics["drift_share"] == sum(c.drifted for c in expected.columns) / 4
    assert window.metrics["drift_share"] > 0
