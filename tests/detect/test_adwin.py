"""ADWIN against River's ``drift.ADWIN``: same detections and the same window afterwards."""

from __future__ import annotations

import numpy as np
import pytest
from river import drift

from opsloop.detect import ADWIN

from .streams import river_signals

PARAMS = [
    {},
    {"delta": 0.01, "clock": 1},
    {"delta": 1e-4, "clock": 8, "max_buckets": 3, "min_window_length": 10, "grace_period": 50},
    {"max_buckets": 2, "clock": 16, "min_window_length": 1, "grace_period": 0},
]


def _assert_same_window(ours: ADWIN, theirs) -> None:
    assert ours.width == theirs.width
    assert ours.variance == theirs.variance
    assert ours.estimation == theirs.estimation


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("stream", ["no_change", "abrupt", "gradual", "several"])
def test_same_signals_as_river_gaussian(params, stream, normal_streams):
    xs = normal_streams[stream]
    reference = drift.ADWIN(**params)
    drifts, _ = river_signals(reference, xs)
    detector = ADWIN(**params)
    assert detector.update_many(xs).drift_indices.tolist() == drifts
    _assert_same_window(detector, reference)
    if stream == "several":
        assert len(drifts) >= 3


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("stream", ["no_change", "abrupt", "gradual", "several"])
def test_same_signals_as_river_errors(params, stream, error_streams):
    xs = error_streams[stream]
    reference = drift.ADWIN(**params)
    drifts, _ = river_signals(reference, xs)
    detector = ADWIN(**params)
    assert detector.update_many(xs).drift_indices.tolist() == drifts
    _assert_same_window(detector, reference)


def test_long_quiet_stream_builds_many_bucket_levels():
    # Level i holds 4 or 5 buckets of 2**i items, so 200,000 items need 16 levels.
    xs = np.random.default_rng(9).normal(size=200_000)
    reference = drift.ADWIN()
    for x in xs.tolist():
        reference.update(x)
    detector = ADWIN()
    assert detector.update_many(xs).n_drifts == 0
    _assert_same_window(detector, reference)
    levels = detector.to_state()["state"]["bucket_totals"]
    assert len(levels) == 16
    assert sum(len(level) * 2**i for i, level in enumerate(levels)) == 200_000
    assert sum(sum(level) for level in levels) == pytest.approx(xs.sum(), abs=1e-9)


def test_window_restarts_after_a_detection():
    xs = np.concatenate([np.zeros(500), np.ones(500)])
    detector = ADWIN()
    result = detector.update_many(xs)
    last = int(result.drift_indices[-1])
    detector = ADWIN()
    detector.update_many(xs[: last + 1])
    assert detector.drift_detected
    detector.update(1.0)
    assert detector.width == 1


def test_max_buckets_below_two_is_refused():
    with pytest.raises(ValueError, match="ADWIN: max_buckets must be an integer >= 2, got 1"):
        ADWIN(max_buckets=1)
