"""EDDM against River's ``drift.binary.EDDM``: same drift and warning positions."""

from __future__ import annotations

import pytest
from river import drift

from opsloop.detect import EDDM

from .streams import river_signals

PARAMS = [
    {},
    {"warm_start": 10, "alpha": 0.9, "beta": 0.8},
    {"warm_start": 100, "alpha": 0.99, "beta": 0.95},
    {"alpha": 0.8, "beta": 0.75},
]


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("stream", ["no_change", "abrupt", "gradual", "several"])
def test_same_signals_as_river(params, stream, error_streams):
    xs = error_streams[stream]
    drifts, warnings = river_signals(drift.binary.EDDM(**params), xs, warnings=True)
    result = EDDM(**params).update_many(xs)
    assert result.drift_indices.tolist() == drifts
    assert result.warning_indices.tolist() == warnings


def test_default_signals_are_pinned(error_streams):
    # River's defaults raise many alarms on an unchanged 10% error stream; pinned here so a
    # change in the rule shows up even if River changes too.
    result = EDDM().update_many(error_streams["no_change"])
    assert result.n_drifts == len(river_signals(drift.binary.EDDM(), error_streams["no_change"])[0])
    assert result.n_drifts > 20


def test_warning_persists_until_next_error():
    detector = EDDM(warm_start=2, alpha=0.99, beta=0.01)
    # Errors every 10 items, then every 2: the gap statistic falls below alpha but not beta.
    xs = [1 if i % 10 == 0 else 0 for i in range(200)] + [1, 0] * 10
    result = detector.update_many(xs)
    assert result.n_drifts == 0 and result.n_warnings > 0
    first = int(result.warning_indices[0])
    assert xs[first] == 1
    # Once warned, the zeros that follow keep the warning on.
    assert first + 1 in result.warning_indices.tolist()


def test_alpha_below_beta_is_refused():
    with pytest.raises(ValueError, match=r"EDDM: alpha \(0.8\) must be >= beta \(0.9\)"):
        EDDM(alpha=0.8, beta=0.9)
