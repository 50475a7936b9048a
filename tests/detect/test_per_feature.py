"""PerFeatureMonitor: each column gets its own detector, nulls skipped, rows mapped back."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from opsloop.detect import ADWIN, DDM, KSWIN, LFR, PageHinkley, PerFeatureMonitor


def _frame(seed: int = 0, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 5, n),
            "income": rng.lognormal(10, 0.5, n),
            "clicks": rng.poisson(3, n),
            "member": rng.random(n) < 0.3,
            "city": rng.choice(["a", "b", "c"], n),
        }
    )
    frame.loc[n // 2 :, "age"] += 8
    frame.loc[rng.choice(n, 200, replace=False), "income"] = np.nan
    return frame


def test_each_column_matches_its_own_detector():
    frame = _frame()
    result = PerFeatureMonitor(ADWIN).update_many(frame)
    assert list(result.results) == ["age", "income", "clicks", "member"]  # "city" is text
    for column, column_result in result.results.items():
        values = frame[column].to_numpy(dtype=float)
        present = ~np.isnan(values)
        alone = ADWIN().update_many(values[present])
        # Positions are row positions in the frame, the detector saw only present values.
        assert (
            column_result.drift_indices.tolist()
            == np.flatnonzero(present)[alone.drift_indices].tolist()
        )
    assert result.drifted_columns == ["age"]
    assert result.results["age"].drift_indices[0] >= 2000


def test_a_factory_per_column_and_batches():
    frame = _frame(1)
    monitor = PerFeatureMonitor(
        {"age": lambda: PageHinkley(threshold=20.0), "member": DDM}, columns=["age", "member"]
    )
    first = monitor.update_many(frame.iloc[:3000])
    second = monitor.update_many(frame.iloc[3000:])
    assert second.start == 3000 and monitor.n_seen == 4000
    whole = PerFeatureMonitor(
        {"age": lambda: PageHinkley(threshold=20.0), "member": DDM}
    ).update_many(frame)
    for column in ("age", "member"):
        joined = np.concatenate(
            [first.results[column].drift_indices, 3000 + second.results[column].drift_indices]
        )
        assert joined.tolist() == whole.results[column].drift_indices.tolist()
    assert isinstance(monitor.detectors["member"], DDM)


def test_state_round_trip_continues_identically():
    frame = _frame(2)
    monitor = PerFeatureMonitor(lambda: KSWIN(alpha=0.001, seed=1), columns=["age", "income"])
    monitor.update_many(frame.iloc[:1500])
    saved = json.loads(json.dumps(monitor.to_state(), allow_nan=False))
    restored = PerFeatureMonitor.from_state(saved)
    rest = restored.update_many(frame.iloc[1500:])
    twin = PerFeatureMonitor(lambda: KSWIN(alpha=0.001, seed=1), columns=["age", "income"])
    twin.update_many(frame.iloc[:1500])
    expected = twin.update_many(frame.iloc[1500:])
    assert rest.to_dict() == expected.to_dict()
    assert rest.results["age"].drift_detected


def test_rejected_frames_change_nothing():
    frame = _frame(3)
    monitor = PerFeatureMonitor(DDM, columns=["member"])
    monitor.update_many(frame.iloc[:100])
    before = json.dumps(monitor.to_state())
    with pytest.raises(ValueError, match="the frame lacks monitored columns"):
        monitor.update_many(frame.drop(columns="member"))
    bad = frame.iloc[100:110].copy()
    bad["member"] = bad["member"].astype(float)
    bad.iloc[4, bad.columns.get_loc("member")] = 0.5
    with pytest.raises(ValueError, match=r"column 'member', row 4: 0.5 breaks DDM's rule"):
        monitor.update_many(bad)
    assert json.dumps(monitor.to_state()) == before
    with pytest.raises(ValueError, match="column 'city' is category"):
        PerFeatureMonitor(ADWIN, columns=["city"]).update_many(frame)
    with pytest.raises(ValueError, match="made a LFR, not a detector that reads one value"):
        PerFeatureMonitor(LFR, columns=["age"]).update_many(frame)


def test_single_rows_and_views():
    monitor = PerFeatureMonitor(ADWIN, columns=["x"])
    flags = [monitor.update({"x": float(i >= 500)})["x"] for i in range(1000)]
    assert flags.index(True) == 511
    result = PerFeatureMonitor(ADWIN).update_many(_frame(4))
    table = result.to_frame()
    assert list(table.columns) == ["column", "index", "position", "signal"]
    assert table["column"].tolist().count("age") == result.results["age"].n_drifts > 0
    assert len(table) == sum(r.n_drifts for r in result.results.values())
    json.dumps(result.to_dict())
