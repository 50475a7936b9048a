"""PageHinkley against River's ``drift.PageHinkley`` on Gaussian and error streams."""

from __future__ import annotations

import pytest
from river import drift

from opsloop.detect import PageHinkley

from .streams import river_signals

PARAMS = [
    {},
    {"min_instances": 10, "delta": 0.1, "threshold": 10.0, "alpha": 1.0},
    {"mode": "up", "threshold": 20.0},
    {"mode": "down", "alpha": 0.99, "threshold": 5.0},
]


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("stream", ["no_change", "abrupt", "gradual", "several"])
def test_same_signals_as_river_gaussian(params, stream, normal_streams):
    xs = normal_streams[stream]
    reference = drift.PageHinkley(**params)
    drifts, _ = river_signals(reference, xs)
    detector = PageHinkley(**params)
    assert detector.update_many(xs).drift_indices.tolist() == drifts
    assert detector.mean == reference._x_mean.get()


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("stream", ["no_change", "abrupt", "gradual", "several"])
def test_same_signals_as_river_errors(params, stream, error_streams):
    xs = error_streams[stream]
    drifts, _ = river_signals(drift.PageHinkley(**params), xs)
    assert PageHinkley(**params).update_many(xs).drift_indices.tolist() == drifts


def test_mode_up_ignores_falls():
    xs = [0.0] * 100 + [-10.0] * 100
    assert PageHinkley(mode="up").update_many(xs).n_drifts == 0
    # Item 100 + k deviates from the running mean by -1000 / (101 + k): the sum of the first
    # five is 48.6 and of the first six 58.0, so the fall passes threshold 50 at item 105.
    assert PageHinkley(mode="down").update_many(xs).drift_indices.tolist() == [105]


def test_bad_mode():
    with pytest.raises(ValueError, match=r"PageHinkley: mode must be one of"):
        PageHinkley(mode="sideways")
