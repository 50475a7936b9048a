"""HDDM_A against River's ``drift.binary.HDDMA``: same drift and warning positions."""

from __future__ import annotations

import numpy as np
import pytest
from river import drift

from opsloop.detect import HDDM_A

from .streams import river_signals

PARAMS = [
    {},
    {"drift_confidence": 0.01, "warning_confidence": 0.05},
    {"two_sided_test": True},
    {"drift_confidence": 1e-5, "warning_confidence": 1e-4, "two_sided_test": True},
]


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("stream", ["no_change", "abrupt", "gradual", "several"])
def test_same_signals_as_river(params, stream, error_streams):
    xs = error_streams[stream]
    drifts, warnings = river_signals(drift.binary.HDDMA(**params), xs, warnings=True)
    result = HDDM_A(**params).update_many(xs)
    assert result.drift_indices.tolist() == drifts
    assert result.warning_indices.tolist() == warnings


def test_same_signals_as_river_on_fractions():
    # HDDM_A reads any value in [0, 1], e.g. a per-batch error rate.
    rng = np.random.default_rng(5)
    xs = np.concatenate([rng.beta(2, 8, 3000), rng.beta(4, 6, 3000)])
    drifts, warnings = river_signals(drift.binary.HDDMA(two_sided_test=True), xs, warnings=True)
    result = HDDM_A(two_sided_test=True).update_many(xs)
    assert result.drift_indices.tolist() == drifts and drifts
    assert result.warning_indices.tolist() == warnings


def test_two_sided_sees_a_fall(error_streams):
    # The "several" stream falls from 30% to 5% errors at item 3000.
    one_sided = HDDM_A().update_many(error_streams["several"]).drift_indices
    two_sided = HDDM_A(two_sided_test=True).update_many(error_streams["several"]).drift_indices
    assert not ((one_sided >= 3000) & (one_sided < 4500)).any()
    assert ((two_sided >= 3000) & (two_sided < 3300)).any()


def test_rejects_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"HDDM_A: xs\[2\] = 1.5 breaks the rule 'values lie"):
        HDDM_A().update_many([0.0, 1.0, 1.5])


def test_rejects_confidence_outside_zero_one():
    with pytest.raises(ValueError, match="HDDM_A: drift_confidence must be a finite number"):
        HDDM_A(drift_confidence=0.0)
