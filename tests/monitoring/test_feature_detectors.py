"""Streaming detectors per input feature: alarms equal ADWIN (and River's ADWIN) or CUSUM
fed each feature's normal scores against the reference directly, across windows and across
a reopened store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from river import drift
from tests.clock import FakeClock
from tests.detect.streams import river_signals

from opsloop.detect import ADWIN, CUSUM
from opsloop.detect.presets import preset_params
from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.feature_stream import (
    FeatureReference,
    feature_detector_setting,
    read_features,
    set_feature_detectors,
    window_inputs,
)
from opsloop.monitoring.local_monitoring import Monitoring
from opsloop.monitoring.monitor_report import monitor_report, monitor_status, window_label
from opsloop.monitoring.monitor_state import put_state
from opsloop.store.database import Database

from .conftest import HOUR_MS, T0

WINDOWS, PER_WINDOW = 6, 1000
SHIFT_AT = 3500
SHIFTED = "mean radius"


@pytest.fixture(scope="module")
def traffic(cancer) -> pd.DataFrame:
    """6,000 rows drawn from the breast cancer data, ``mean radius`` one standard deviation
    higher from row 3,500 on."""
    data, _ = cancer
    rng = np.random.default_rng(11)
    rows = data.iloc[rng.integers(0, len(data), WINDOWS * PER_WINDOW)].reset_index(drop=True)
    rows.loc[SHIFT_AT:, SHIFTED] += data[SHIFTED].std()
    return rows


@pytest.fixture(scope="module")
def reference(traffic) -> FeatureReference:
    """The first window's rows, as the windows' tests set them as the reference."""
    return FeatureReference.of(traffic.iloc[:PER_WINDOW])


def _direct(values: np.ndarray) -> list[int]:
    return ADWIN.preset("monitoring").update_many(values).drift_indices.tolist()


def _cusum() -> CUSUM:
    """CUSUM's preset for normal scores, its threshold for the reference's 1,000 values: the
    rate averaged over the reference's sampling error is the stated one."""
    return CUSUM(**{**preset_params("CUSUM", "normal_scores"), "h": 31.387983700962426})


def _listed(detector: str, values: np.ndarray) -> list[int]:
    """The positions of the alarms listed for a feature whose ``values`` are read in windows
    of ``PER_WINDOW``: ADWIN's every alarm; CUSUM's first in each window."""
    if detector == "ADWIN":
        return _direct(values)
    found = _cusum().update_many(values).drift_indices
    return sorted({int(found[found // PER_WINDOW == k].min()) for k in set(found // PER_WINDOW)})


def _scores(reference: FeatureReference, traffic: pd.DataFrame, name: str) -> np.ndarray:
    return reference.normal_scores(name, traffic[name].to_numpy())


def _log(monitoring: Monitoring, traffic: pd.DataFrame) -> None:
    times = T0 + np.arange(len(traffic)) * (HOUR_MS // PER_WINDOW)
    for k in range(len(traffic) // PER_WINDOW):
        lo, hi = k * PER_WINDOW, (k + 1) * PER_WINDOW
        monitoring.log_predictions(
            "api",
            traffic.iloc[lo:hi],
            [0] * PER_WINDOW,
            at_ms=times[lo:hi],
            request_ids=[f"r{i}" for i in range(lo, hi)],
            # The model changes half way: the feature detectors read on (inputs do not
            # depend on the model), so their alarms stay those of one uninterrupted stream.
            model="cancer",
            version=1 if k < 2 else 2,
        )


def _alarms(evaluations) -> list[tuple]:
    return [
        (e.start_ms, a["feature"], a["detector"], a["position"], a["change_point"])
        for e in evaluations
        for a in e.metrics["feature_stream"]["alarms"]
    ]


def test_read_in_windows_equals_the_detector_fed_directly(traffic, reference):
    state, alarms = None, []
    for k in range(WINDOWS):
        window = traffic.iloc[k * PER_WINDOW : (k + 1) * PER_WINDOW]
        read = read_features(state, window, reference, detector="ADWIN")
        state, alarms = read.state, alarms + read.alarms
    assert read.watched == list(traffic.columns) and read.restarted == []
    values = _scores(reference, traffic, SHIFTED)
    direct = _direct(values)
    river, _ = river_signals(drift.ADWIN(**preset_params("ADWIN", "monitoring")), values)
    assert direct == river and len(direct) >= 1
    assert [a["position"] for a in alarms if a["feature"] == SHIFTED] == direct
    # Found within 100 values of the planted shift. ADWIN's kept window at the alarm reaches
    # back before the window's first value (3,000), which the window does not hold: no
    # estimate of the change point; read in one piece, it is placed within 50 of the shift.
    first = next(a for a in alarms if a["feature"] == SHIFTED)
    assert SHIFT_AT <= first["position"] < SHIFT_AT + 100
    assert first["change_point"] is None
    whole = read_features(None, traffic, reference, detector="ADWIN").alarms
    assert [a["position"] for a in whole] == [first["position"]]
    assert abs(whole[0]["change_point"] - SHIFT_AT) <= 50
    # Every feature's alarms are the detector's fed that feature's scores directly. No
    # unshifted one signals: fed raw values, the two most skewed (skewness 3.4 and 5.4)
    # did, in their first 1,000 values, where ADWIN's estimate of a heavy tail is roughest.
    for name in traffic.columns:
        found = [a["position"] for a in alarms if a["feature"] == name]
        assert found == _direct(_scores(reference, traffic, name))
    assert {a["feature"] for a in alarms} == {SHIFTED}
    raw = {name: _direct(traffic[name].to_numpy()) for name in traffic.columns}
    assert raw["perimeter error"] == [739] and raw["area error"] == [735]


def _page_change_point(values: np.ndarray, at: int, h: float, k: float) -> int:
    """Page's estimate, by the recursion itself: the value after the signalling sum's last
    zero before the alarm at ``at`` (from a chart at zero at the stream's start)."""
    up = down = 0.0
    last_up = last_down = -1
    for i, z in enumerate(values[: at + 1].tolist()):
        up, down = max(0.0, up + z - k), max(0.0, down - z - k)
        if i < at:
            last_up = i if up == 0.0 else last_up
            last_down = i if down == 0.0 else last_down
    return (last_up if up > h else last_down) + 1


def test_cusum_read_in_windows_lists_each_window_first_alarm(traffic, reference):
    """CUSUM on the scores, read in six windows: each window lists the chart's first alarm
    with the number of its signals there, as the chart fed the whole stream at once gives
    them; Page's change point is the value after the sum's last zero."""
    state, alarms = None, []
    for k in range(WINDOWS):
        window = traffic.iloc[k * PER_WINDOW : (k + 1) * PER_WINDOW]
        read = read_features(state, window, reference, detector="CUSUM")
        assert (read.detector, read.preset) == ("CUSUM", "normal_scores")
        state, alarms = read.state, alarms + read.alarms
    values = _scores(reference, traffic, SHIFTED)
    signals = _cusum().update_many(values).drift_indices
    assert {a["feature"] for a in alarms} == {SHIFTED}
    listed = [a for a in alarms if a["feature"] == SHIFTED]
    assert [a["position"] for a in listed] == _listed("CUSUM", values)
    assert [a["signals"] for a in listed] == [
        int((signals // PER_WINDOW == a["position"] // PER_WINDOW).sum()) for a in listed
    ]
    # One standard deviation: found within 100 values, and after it, every few dozen.
    assert SHIFT_AT <= listed[0]["position"] < SHIFT_AT + 100
    assert listed[0]["signals"] > 5
    assert listed[0]["change_point"] == _page_change_point(
        values, listed[0]["position"], 28.3, 0.25
    )
    assert abs(listed[0]["change_point"] - SHIFT_AT) <= 50
    # Every window's detectors are those fed the feature's scores at once.
    whole = _cusum()
    whole.update_many(values)
    assert state["detectors"][SHIFTED] == whole.to_state()


@pytest.mark.parametrize("detector", ["CUSUM", "ADWIN"])
def test_no_false_alarm_on_gaussian_features_like_the_data(cancer, detector):
    """The 30 features' means and standard deviations, Gaussian values: 180,000 unchanged
    values, where the presets' stated rate (0.01 per 100,000) expects 0.02 alarms."""
    data, _ = cancer
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        rng.normal(data.mean(), data.std(), size=(WINDOWS * PER_WINDOW, data.shape[1])),
        columns=data.columns,
    )
    reference = FeatureReference.of(frame.iloc[:PER_WINDOW])
    state, alarms = None, []
    for k in range(WINDOWS):
        window = frame.iloc[k * PER_WINDOW : (k + 1) * PER_WINDOW]
        read = read_features(state, window, reference, detector=detector)
        state, alarms = read.state, alarms + read.alarms
    assert alarms == []
    assert all(state["detectors"][name]["n_seen"] == WINDOWS * PER_WINDOW for name in data.columns)


def test_limit_on_features_and_missing_values_skipped():
    frame = pd.DataFrame(
        {"a": [1.0, np.nan, 3.0], "b": [1, 2, 3], "c": [True, False, True], "d": [0.5] * 3}
    )
    reference = FeatureReference.of(frame)
    read = read_features(None, frame, reference, max_features=2)
    assert read.watched == ["a", "b"] and read.unwatched == 1
    detectors = read.state["detectors"]
    assert detectors["a"]["n_seen"] == 2 and detectors["b"]["n_seen"] == 3
    # Watched features stay watched; the limit leaves later ones out.
    again = read_features(read.state, frame[["d", "b", "a"]], reference, max_features=2)
    assert again.watched == ["a", "b"] and again.state["detectors"]["a"]["n_seen"] == 4


def test_features_the_reference_lacks_are_not_watched():
    reference = FeatureReference.of(pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}))
    frame = pd.DataFrame({"a": [1.5], "b": [3.0], "c": [4]})
    read = read_features(None, frame, reference)
    assert read.watched == ["a"] and read.unreferenced == ["b", "c"]
    assert list(read.state["detectors"]) == ["a"]


def test_a_changed_reference_restarts_the_feature_detector():
    rng = np.random.default_rng(2)
    first = FeatureReference.of(pd.DataFrame({"x": rng.normal(size=500), "y": [1.0] * 500}))
    frame = pd.DataFrame({"x": rng.normal(size=300), "y": [1.0] * 300})
    read = read_features(None, frame, first)
    again = read_features(read.state, frame, first)
    assert again.restarted == [] and again.state["detectors"]["x"]["n_seen"] == 600
    # x's reference values change, y's stay: only x starts afresh.
    second = FeatureReference(
        {"x": np.sort(rng.normal(size=500)), "y": first.sorted["y"]},
        {"x": "another", "y": first.digests["y"]},
    )
    changed = read_features(again.state, frame, second)
    assert changed.restarted == ["x"]
    assert changed.state["detectors"]["x"]["n_seen"] == 300
    assert changed.state["detectors"]["y"]["n_seen"] == 900
    assert changed.state["references"] == second.digests
    # Another detector starts each feature afresh, on its preset.
    other = read_features(changed.state, frame, second, detector="CUSUM")
    assert other.restarted == ["x", "y"]
    assert other.state["detectors"]["x"]["detector"] == "CUSUM"
    assert other.state["detectors"]["x"]["n_seen"] == 300
    # Its threshold is the one for 500 reference values (Siegmund's ARL averaged over
    # the reference's sampling error: 36.2, where 28.3 is the population's).
    assert other.state["detectors"]["x"]["params"]["h"] == pytest.approx(36.2, abs=0.01)
    assert read_features(other.state, frame, second, detector="CUSUM").restarted == []
    # Under CUSUM's 265 reference values its calibration has no threshold: ADWIN.
    small = FeatureReference.of(pd.DataFrame({"x": rng.normal(size=264)}))
    few = read_features(None, frame, small, detector="CUSUM")
    assert few.state["detectors"]["x"]["detector"] == "ADWIN"
    assert read_features(few.state, frame, small, detector="CUSUM").restarted == []
    # A state of detectors that read raw values (kept before the scores) starts afresh.
    old = {"x": ADWIN.preset("monitoring").to_state()}
    assert read_features(old, frame, first).state["detectors"]["x"]["n_seen"] == 300


def test_window_inputs_in_event_order_from_batches_and_texts(db):
    """Events kept column by column (a batch of 1,000 rows) and as text (two single
    requests) read back in time order, as one frame."""
    rng = np.random.default_rng(4)
    batch = pd.DataFrame({"x": rng.normal(size=1000), "k": rng.integers(0, 9, 1000)})
    times = T0 + 2 * np.arange(1000)
    log_predictions(db, "api", batch, [0] * 1000, at_ms=times, request_ids=list(range(1000)))
    columnar = window_inputs(db, "api", "default", T0, T0 + HOUR_MS)
    pd.testing.assert_frame_equal(columnar, batch)
    log_predictions(db, "api", [{"x": 0.5, "k": 3}], [1], at_ms=T0 + 1, request_ids=["a"])
    log_predictions(db, "api", [{"x": 0.25, "k": 4}], [1], at_ms=T0 + 5, request_ids=["b"])
    mixed = window_inputs(db, "api", "default", T0, T0 + HOUR_MS)
    expected = pd.concat(
        [
            batch.iloc[:1],
            pd.DataFrame({"x": [0.5], "k": [3]}),
            batch.iloc[1:3],
            pd.DataFrame({"x": [0.25], "k": [4]}),
            batch.iloc[3:],
        ],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(mixed, expected)


def test_setting_is_off_by_default_and_checked(db):
    assert feature_detector_setting(db, "api") == {
        "enabled": False,
        "max_features": 50,
        "detector": "ADWIN",
    }
    with pytest.raises(InvalidArgumentError, match=r"^detector: must be one of ADWIN, CUSUM"):
        set_feature_detectors(db, "api", enabled=True, detector="KSWIN")
    with pytest.raises(InvalidArgumentError, match=r"^max_features: .*at least 1, got 0"):
        set_feature_detectors(db, "api", enabled=True, max_features=0)
    with pytest.raises(InvalidArgumentError, match=r"^max_features: .*got 2.5"):
        set_feature_detectors(db, "api", enabled=True, max_features=2.5)
    with pytest.raises(InvalidArgumentError, match=r"^enabled: must be true or false"):
        set_feature_detectors(db, "api", enabled=1)
    assert feature_detector_setting(db, "api")["enabled"] is False
    # A setting saved before the detector could be chosen ran ADWIN, and goes on with it.
    with db.write() as connection:
        put_state(connection, "old", "feature_detectors", {"enabled": True, "max_features": 5})
    assert feature_detector_setting(db, "old")["detector"] == "ADWIN"


def test_off_by_default_in_windows(db, clock, traffic):
    monitoring = Monitoring(db)
    monitoring.set_reference("api", traffic.iloc[:1000])
    _log(monitoring, traffic.iloc[: 2 * PER_WINDOW])
    clock.now_ms = T0 + 2 * HOUR_MS
    done = monitoring.evaluate("api", policies=["feature_alarms > 0 -> alert"])
    assert [e.metrics["feature_alarms"] for e in done] == [None, None]
    assert monitoring.alerts("api").empty


@pytest.mark.parametrize("detector", ["CUSUM", "ADWIN"])
def test_resumes_after_a_restart_as_one_uninterrupted_run(tmp_path, traffic, reference, detector):
    policies = ["feature_alarms > 0 -> alert"]
    # One uninterrupted run.
    whole = Database(f"sqlite:///{tmp_path / 'whole.db'}", clock=FakeClock(T0))
    one = Monitoring(whole)
    one.set_reference("api", traffic.iloc[:1000])
    one.set_feature_detectors("api", enabled=True, detector=detector)
    _log(one, traffic)
    whole.clock.now_ms = T0 + WINDOWS * HOUR_MS
    uninterrupted = one.evaluate("api", policies=policies)
    whole.dispose()
    # Half the windows, the store closed, then the rest by another process's object.
    path = tmp_path / "split.db"
    first_db = Database(f"sqlite:///{path}", clock=FakeClock(T0))
    first = Monitoring(first_db)
    first.set_reference("api", traffic.iloc[:1000])
    first.set_feature_detectors("api", enabled=True, detector=detector)
    _log(first, traffic)
    first_db.clock.now_ms = T0 + 3 * HOUR_MS
    before = first.evaluate("api", policies=policies)
    first_db.dispose()
    second_db = Database(f"sqlite:///{path}", clock=FakeClock(T0 + WINDOWS * HOUR_MS))
    second = Monitoring(second_db)
    after = second.evaluate("api", policies=policies)
    assert len(before) == 3 and len(after) == 3
    assert _alarms(before) + _alarms(after) == _alarms(uninterrupted)
    # Each feature's alarms are those of the detector fed its scores against the reference
    # directly, though the model version changed after two windows: the feature detectors
    # do not restart.
    for name in traffic.columns:
        found = [a[3] for a in _alarms(uninterrupted) if a[1] == name]
        assert found == _listed(detector, _scores(reference, traffic, name))
    assert {a[2] for a in _alarms(uninterrupted)} == {detector}
    direct = _listed(detector, _scores(reference, traffic, SHIFTED))
    every = [a[3] for a in _alarms(uninterrupted)]
    assert [e.metrics["feature_alarms"] for e in uninterrupted] == [
        sum(k * PER_WINDOW <= p < (k + 1) * PER_WINDOW for p in every) for k in range(WINDOWS)
    ]
    # The rule fires in each window with an alarm after one without (the shift's, in the
    # fourth), the window's alarms as evidence.
    counts = [e.metrics["feature_alarms"] for e in uninterrupted]
    assert counts[3] >= 1 and counts[:3] == [0, 0, 0]
    stream = uninterrupted[0].metrics["feature_stream"]
    assert stream["scale"] == "normal score against the reference"
    assert stream["unreferenced"] == [] and stream["restarted"] == []
    fired = [T0 + k * HOUR_MS for k in range(WINDOWS) if counts[k] and not (k and counts[k - 1])]
    alerts = second.alerts("api")
    assert sorted(alerts["start_ms"].tolist()) == fired
    shifted_window = T0 + SHIFT_AT // PER_WINDOW * HOUR_MS
    (evidence,) = alerts.loc[alerts["start_ms"] == shifted_window, "evidence"].tolist()
    assert [(a["feature"], a["position"]) for a in evidence["feature_alarms"]] == [
        (SHIFTED, p) for p in direct if 3 * PER_WINDOW <= p < 4 * PER_WINDOW
    ]
    # Shown in the status and the report's heatmap.
    expected = [(window_label(a[0]), a[1]) for a in _alarms(uninterrupted)]
    status = monitor_status(second_db, "api", last=WINDOWS)
    shown = [
        (w["window"], a["feature"]) for w in status["windows"] for a in w["feature_alarm_list"]
    ]
    assert shown == expected
    assert [w["feature_alarms"] for w in status["windows"]] == counts
    report = monitor_report(second_db, "api")
    assert report.feature_alarms == sorted(set(expected))
    # Plotly writes the figure's text as JSON escapes: the marked cells are ◆.
    html = report.to_html(plotly="beside")
    assert html.count("\\u25c6") == len(set(expected))
    second_db.dispose()
