"""HDDM_W against River's ``drift.binary.HDDMW``: same drift and warning positions."""

from __future__ import annotations

import numpy as np
import pytest
from river import drift

from opsloop.detect import HDDM_W

from .streams import river_signals

PARAMS = [
    {},
    {"lambda_val": 0.01},
    {"two_sided_test": True, "lambda_val": 0.1},
    {"drift_confidence": 1e-5, "warning_confidence": 1e-3, "two_sided_test": True},
]


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("stream", ["no_change", "abrupt", "gradual", "several"])
def test_same_signals_as_river(params, stream, error_streams):
    xs = error_streams[stream]
    drifts, warnings = river_signals(drift.binary.HDDMW(**params), xs, warnings=True)
    result = HDDM_W(**params).update_many(xs)
    assert result.drift_indices.tolist() == drifts
    assert result.warning_indices.tolist() == warnings


def test_same_signals_as_river_on_fractions():
    rng = np.random.default_rng(6)
    xs = np.concatenate([rng.beta(2, 8, 3000), rng.beta(4, 6, 3000)])
    drifts, warnings = river_signals(
        drift.binary.HDDMW(lambda_val=0.01, two_sided_test=True), xs, warnings=True
    )
    result = HDDM_W(lambda_val=0.01, two_sided_test=True).update_many(xs)
    assert result.drift_indices.tolist() == drifts and drifts
    assert result.warning_indices.tolist() == warnings


def test_first_item_sets_the_weighted_mean():
    # River's weighted mean takes the first item as is: a stream starting with an error
    # does not count as a rise from 0.
    assert HDDM_W().update_many([1.0] + [0.0] * 50).n_drifts == 0


def test_rejects_bad_lambda():
    with pytest.raises(ValueError, match=r"HDDM_W: lambda_val must be a finite number in \(0.0"):
        HDDM_W(lambda_val=0.0)
