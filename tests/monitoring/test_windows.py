"""Windows: parts from several workers merge to the one-worker window, restarts resume, raw
samples expire while profiles stay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opsloop.data.profile import profile
from opsloop.data.row_sample import KEY_COLUMN, row_keys
from opsloop.monitoring.event_log import log_predictions
from opsloop.monitoring.software_metrics import LATENCY_BOUNDS_MS
from opsloop.monitoring.window_store import read_window, update_windows, window_starts
from opsloop.monitoring.windowing import Windowing
from opsloop.store.database import Database

from .conftest import HOUR_MS, T0

WINDOWING = Windowing("1h", sample_size=100, seed=7)


def _traffic(cancer, n=400, seed=0):
    frame, target = cancer
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(frame), n, replace=False)
    inputs = frame.iloc[rows].reset_index(drop=True)
    times = T0 + np.sort(rng.integers(0, 2 * HOUR_MS, n))  # two windows
    ids = [f"req-{i}" for i in range(n)]
    return inputs, target[rows], times, ids


def _log(db, inputs, predictions, times, ids, part):
    log_predictions(
        db,
        "cancer",
        inputs.iloc[part],
        predictions[part],
        at_ms=times[part],
        request_ids=[ids[i] for i in part],
        latency_ms=part % 40 * 1.3,
    )


def _assert_same_profile(a, b):
    assert a.n_rows == b.n_rows and a.names == b.names
    for column in a.names:
        x, y = a[column], b[column]
        assert (x.count, x.null_count) == (y.count, y.null_count)
        if x.numeric is not None:
            assert x.numeric.sum == y.numeric.sum  # exact sums
            assert x.numeric.minimum == y.numeric.minimum and x.numeric.maximum == y.numeric.maximum
            for stat in ("mean", "variance", "skewness", "kurtosis"):
                got, want = getattr(x.numeric, stat), getattr(y.numeric, stat)
                got = got() if callable(got) else got
                want = want() if callable(want) else want
                assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (column, stat)


def test_two_workers_parts_merge_to_the_one_worker_window(tmp_path, clock, cancer):
    inputs, target, times, ids = _traffic(cancer)
    one = Database(f"sqlite:///{tmp_path / 'one.db'}", clock=clock)
    two = Database(f"sqlite:///{tmp_path / 'two.db'}", clock=clock)
    everything = np.arange(len(ids))
    _log(one, inputs, target, times, ids, everything)
    assert update_windows(one, "cancer", WINDOWING) == len(ids)
    # Worker w1 folds the even events, w2 the odd ones: every window gets two parts.
    _log(two, inputs, target, times, ids, everything[::2])
    update_windows(two, "cancer", WINDOWING, worker="w1")
    _log(two, inputs, target, times, ids, everything[1::2])
    update_windows(two, "cancer", WINDOWING, worker="w2")
    starts = window_starts(two, "cancer", WINDOWING)
    assert starts["start_ms"].tolist() == [T0, T0 + HOUR_MS]
    assert starts["workers"].tolist() == [2, 2]
    for start in (T0, T0 + HOUR_MS):
        single = read_window(one, "cancer", "default", WINDOWING, start)
        merged = read_window(two, "cancer", "default", WINDOWING, start)
        _assert_same_profile(merged.profile, single.profile)
        in_window = (times >= start) & (times < start + HOUR_MS)
        direct = profile(
            inputs[in_window].reset_index(drop=True).assign(prediction=target[in_window])
        )
        _assert_same_profile(merged.profile, direct)
        for name in ("requests", "rows", "errors", "histogram", "first_ms", "last_ms"):
            assert getattr(merged.software, name) == getattr(single.software, name)
        assert merged.software.latency_sum_ms == pytest.approx(
            single.software.latency_sum_ms, rel=1e-12
        )
        assert merged.software.requests == int(in_window.sum())
        # The same rows sampled, whatever the split: the 100 smallest keys of the window.
        pd.testing.assert_frame_equal(merged.sample.rows, single.sample.rows)
        keys = np.sort(row_keys([i for i, w in zip(ids, in_window, strict=True) if w], 7))[:100]
        assert merged.sample.rows[KEY_COLUMN].to_numpy().tolist() == keys.tolist()
    one.dispose()
    two.dispose()


def test_latency_histogram_counts_by_bucket(db):
    latencies = [0.5, 1.0, 1.2, 7.0, 7.0, 450.0, 9000.0]
    log_predictions(
        db, "api", [{"x": i} for i in range(7)], [0] * 7, at_ms=T0, latency_ms=latencies
    )
    update_windows(db, "api", WINDOWING)
    software = read_window(db, "api", "default", WINDOWING, T0).software
    expected = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    for value, bucket in (
        (0.5, 0),
        (1.0, 0),
        (1.2, 1),
        (7.0, 3),
        (7.0, 3),
        (450.0, 8),
        (9000.0, 12),
    ):
        assert LATENCY_BOUNDS_MS[bucket - 1] < value if bucket else True
        expected[bucket] += 1
    assert list(software.histogram) == expected
    assert software.latency_sum_ms == pytest.approx(sum(latencies))
    assert software.latency_quantile(0.5) == 10.0  # the 4th of 7 is 7.0 ms, bucket (5, 10]


def test_a_new_process_on_the_same_file_resumes_without_losing_or_repeating(
    store_path, clock, cancer
):
    inputs, target, times, ids = _traffic(cancer, n=300, seed=3)
    first = Database(f"sqlite:///{store_path}", clock=clock)
    _log(first, inputs, target, times, ids, np.arange(200))
    update_windows(first, "cancer", WINDOWING)
    first.dispose()
    second = Database(f"sqlite:///{store_path}", clock=clock)  # as a restarted process would
    assert update_windows(second, "cancer", WINDOWING) == 0  # nothing folded twice
    _log(second, inputs, target, times, ids, np.arange(200, 300))
    assert update_windows(second, "cancer", WINDOWING) == 100
    total = sum(
        read_window(second, "cancer", "default", WINDOWING, start).software.requests
        for start in window_starts(second, "cancer", WINDOWING)["start_ms"]
    )
    assert total == 300
    second.dispose()


def test_raw_samples_expire_and_profiles_stay(db, clock):
    windowing = Windowing("1h", sample_size=10, sample_retention="1d")
    log_predictions(db, "api", [{"x": float(i)} for i in range(20)], [0] * 20, at_ms=T0)
    update_windows(db, "api", windowing)
    clock.advance(HOUR_MS + 24 * HOUR_MS - 1)  # the window ended a day ago, less 1 ms
    update_windows(db, "api", windowing)
    assert len(read_window(db, "api", "default", windowing, T0).sample) == 10
    clock.advance(1)
    update_windows(db, "api", windowing)
    window = read_window(db, "api", "default", windowing, T0)
    assert window.sample is None
    assert window.profile["x"].numeric.sum == sum(range(20))


def test_values_are_read_back_as_json_has_them(db):
    # Names pandas would take for dates, text that looks like a number, floats whose
    # shortest text a fast parser rounds: every value as logged.
    frame = pd.DataFrame(
        {"created_at": [1_700_000_000_000, 1], "code": ["007", "1e3"], "x": [0.06251, 0.1 + 0.2]}
    )
    log_predictions(db, "api", frame, [0, 1], at_ms=T0, request_ids=["a", "b"])
    update_windows(db, "api", WINDOWING)
    sample = read_window(db, "api", "default", WINDOWING, T0).sample.frame()
    by_code = sample.set_index("code")
    assert by_code.loc["007", "created_at"] == 1_700_000_000_000
    assert by_code.loc["1e3", "x"] == 0.1 + 0.2
    assert by_code.loc["007", "x"] == 0.06251


def test_events_the_serving_runtime_records_fold_into_windows(db):
    from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink

    def event(variant, role, request_id, inputs, output, error, latency, at):
        return PredictionEvent(
            "api", variant, role, "m", 1, request_id, None, inputs, output, error, latency, at
        )

    StoreEventSink(db).write(
        [
            # A request of two records, answered by the stable variant.
            event(
                "stable",
                "primary",
                "r1",
                [{"x": 1.0}, {"x": 3.0}],
                {"predictions": [0, 1], "probabilities": None, "classes": None},
                None,
                4.0,
                T0,
            ),
            # Its shadow failed: no output, an error, in the shadow's own window.
            event("shadow", "shadow", "r1", [{"x": 1.0}, {"x": 3.0}], None, "boom", 30.0, T0 + 1),
            event(
                "stable",
                "primary",
                "r2",
                [{"x": 5.0}],
                {"predictions": [1], "probabilities": None, "classes": None},
                None,
                2.0,
                T0 + 2,
            ),
        ]
    )
    assert update_windows(db, "api", WINDOWING) == 3
    stable = read_window(db, "api", "stable", WINDOWING, T0)
    shadow = read_window(db, "api", "shadow", WINDOWING, T0)
    assert (stable.software.requests, stable.software.rows, stable.software.errors) == (2, 3, 0)
    assert stable.profile["x"].numeric.sum == 9.0
    assert stable.profile["prediction"].numeric.sum == 2
    assert sorted(stable.sample.frame()["x"].tolist()) == [1.0, 3.0, 5.0]
    assert (shadow.software.requests, shadow.software.rows, shadow.software.errors) == (1, 2, 1)
    assert shadow.profile["prediction"].null_count == 2


FOLDER_SCRIPT = """
import sys
from opsloop.monitoring.window_store import update_windows
from opsloop.monitoring.windowing import Windowing
from opsloop.store.database import Database
db = Database(sys.argv[1], clock=lambda: int(sys.argv[2]))
print("folding", flush=True)
update_windows(db, "api", Windowing("1h", sample_size=100, seed=7), batch_size=10_000)
print("done", flush=True)
"""


def test_a_process_killed_while_folding_loses_and_repeats_nothing(store_path, clock):
    import os
    import signal
    import subprocess
    import sys

    n = 40_000
    rng = np.random.default_rng(4)
    db = Database(f"sqlite:///{store_path}", clock=clock)
    frame = pd.DataFrame(rng.normal(size=(n, 5)), columns=list("abcde"))
    log_predictions(
        db, "api", frame, rng.integers(0, 2, n), at_ms=T0 + np.sort(rng.integers(0, 3 * HOUR_MS, n))
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", FOLDER_SCRIPT, f"sqlite:///{store_path}", str(clock.now_ms)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout.readline().strip() == "folding"
    child.send_signal(signal.SIGKILL)  # somewhere in its first transactions
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    update_windows(db, "api", WINDOWING)  # the restart folds what the killed one did not
    starts = window_starts(db, "api", WINDOWING)["start_ms"]
    windows = [read_window(db, "api", "default", WINDOWING, s) for s in starts]
    assert sum(w.software.requests for w in windows) == n
    assert sum(w.profile.n_rows for w in windows) == n
    sums = sum(w.profile["a"].numeric.sum for w in windows)
    assert sums == pytest.approx(frame["a"].sum(), rel=1e-12)
    db.dispose()


def test_a_duration_is_bounded_in_length_and_value_before_it_is_read():
    from opsloop.errors import InvalidArgumentError
    from opsloop.monitoring.windowing import MAX_DURATION_MS, duration_ms

    # 30 leading zeros, a digit and a unit: 32 characters, read as one hour.
    assert duration_ms("0" * 30 + "1h") == 3_600_000
    assert duration_ms("36500d") == MAX_DURATION_MS == 3_153_600_000_000
    assert duration_ms(MAX_DURATION_MS) == MAX_DURATION_MS
    refusals = {
        ("9" * 5000 + "d", "window"): "window: at most 32 characters, got 5001 characters",
        ("0" * 31 + "1h", "sample_retention"): (
            "sample_retention: at most 32 characters, got 33 characters"
        ),
        ("36501d", "window"): "window: at most 36500d (100 years), got '36501d'",
        ("3153600001s", "window"): "window: at most 36500d (100 years), got '3153600001s'",
        (MAX_DURATION_MS + 1, "window"): ("window: at most 36500d (100 years), got 3153600000001"),
        (10**5000, "window"): "window: at most 36500d (100 years), got a longer number",
        (
            -(10**5000),
            "window",
        ): "window: a duration like '5min', '1h' or '1d', got a longer number",
    }
    for (text, field), message in refusals.items():
        with pytest.raises(InvalidArgumentError) as caught:
            duration_ms(text, field)
        assert str(caught.value) == message
    with pytest.raises(InvalidArgumentError, match=r"^sample_retention: at most 32 char"):
        Windowing("1h", sample_retention="1" * 40 + "s")
