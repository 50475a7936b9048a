"""DDM against River's ``drift.binary.DDM``: same drift and warning positions, same state."""

from __future__ import annotations

import pytest
from river import drift

from opsloop.detect import DDM

from .streams import river_signals

PARAMS = [
    {},
    {"warm_start": 10, "warning_threshold": 1.5, "drift_threshold": 2.5},
    {"warm_start": 100, "drift_threshold": 4.0},
    {"warm_start": 50, "warning_threshold": 1.0, "drift_threshold": 2.0},
]


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("stream", ["no_change", "abrupt", "gradual", "several"])
def test_same_signals_as_river(params, stream, error_streams):
    xs = error_streams[stream]
    reference = drift.binary.DDM(**params)
    drifts, warnings = river_signals(reference, xs, warnings=True)
    detector = DDM(**params)
    result = detector.update_many(xs)
    assert result.drift_indices.tolist() == drifts
    assert result.warning_indices.tolist() == warnings
    assert detector.error_rate == reference._p.get()
    if stream == "several":
        assert len(drifts) >= 2


def test_detects_rise_in_error_rate(error_streams):
    # The abrupt stream goes from 10% to 30% errors at item 6000.
    drifts = DDM().update_many(error_streams["abrupt"]).drift_indices
    assert drifts[drifts >= 6000].size and drifts[drifts >= 6000][0] < 6300


def test_warning_never_coincides_with_drift(error_streams):
    result = DDM(warm_start=10, drift_threshold=2.5).update_many(error_streams["several"])
    assert result.n_drifts > 0
    assert set(result.drift_indices.tolist()).isdisjoint(result.warning_indices.tolist())


def test_rejects_non_binary_values():
    with pytest.raises(ValueError, match=r"DDM: xs\[1\] = 0.5 breaks the rule"):
        DDM().update_many([0, 0.5])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"warm_start": -1}, "warm_start must be an integer >= 0"),
        ({"warm_start": 2.5}, "warm_start must be an integer"),
        ({"drift_threshold": float("nan")}, "drift_threshold must be a finite number"),
        ({"warning_threshold": -1.0}, "warning_threshold must be a finite number"),
    ],
)
def test_rejects_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        DDM(**params)
