"""KSWIN against River's ``drift.KSWIN``: same random draws, p-values and detections."""

from __future__ import annotations

import random

import numpy as np
import pytest
from river import drift
from scipy import stats

from opsloop.detect import KSWIN
from opsloop.detect.kswin import _ks_table

from .streams import river_signals

PARAMS = [
    {"seed": 1},
    {"seed": 7, "alpha": 0.01, "window_size": 60, "stat_size": 20},
    {"seed": 3, "alpha": 0.001, "window_size": 200, "stat_size": 50},
    {"seed": 11, "window_size": 300, "stat_size": 40},
]


def _streams(seed: int) -> dict[str, np.ndarray]:
    # River's KSWIN runs a scipy test per item (a few thousand items per second), so these
    # streams are shorter than the shared ones.
    rng = np.random.default_rng(seed)
    z = rng.normal(size=1500)
    ramp = np.clip((np.arange(1500) - 700) / 300, 0, 1)
    return {
        "no_change": z,
        "abrupt": z + 1.0 * (np.arange(1500) >= 750),
        "gradual": z + ramp,
    }


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("stream", ["no_change", "abrupt", "gradual"])
def test_same_signals_as_river(params, stream):
    xs = _streams(42)[stream]
    reference = drift.KSWIN(**params)
    drifts, _ = river_signals(reference, xs)
    detector = KSWIN(**params)
    assert detector.update_many(xs).drift_indices.tolist() == drifts
    assert detector.p_value == reference.p_value
    assert detector.window_values().tolist() == list(reference.window)
    # The generator has made exactly River's draws.
    assert detector.to_state()["state"]["rng"] == list(reference._rng.getstate()[1])


@pytest.mark.parametrize("params", PARAMS[:2], ids=str)
def test_same_signals_as_river_on_an_error_stream(params):
    # 0/1 values: every sample is full of ties. The error rate goes from 10% to 60%.
    rng = np.random.default_rng(8)
    xs = (rng.random(1500) < np.where(np.arange(1500) < 750, 0.1, 0.6)).astype(int)
    reference = drift.KSWIN(**params)
    drifts, _ = river_signals(reference, xs)
    detector = KSWIN(**params)
    assert detector.update_many(xs).drift_indices.tolist() == drifts
    assert detector.p_value == reference.p_value
    assert drifts


def test_same_signals_with_ties_and_a_starting_window():
    rng = np.random.default_rng(3)
    start = np.round(rng.normal(size=80)).tolist()
    xs = np.round(rng.normal(0.8, 1, 1200))
    reference = drift.KSWIN(alpha=0.01, seed=5, window=start)
    drifts, _ = river_signals(reference, xs)
    assert KSWIN(alpha=0.01, seed=5, window=start).update_many(xs).drift_indices.tolist() == drifts
    assert drifts


def test_p_value_table_is_scipy():
    # The lookup table must be what scipy says for samples whose ECDFs differ by h items.
    statistic, p_value = _ks_table(30)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.normal(size=30), rng.normal(0.7, 1, size=30)
        result = stats.ks_2samp(a, b, method="auto")
        h = round(result.statistic * 30)
        assert statistic[h] == result.statistic
        assert p_value[h] == result.pvalue


def test_seed_none_draws_from_a_fresh_generator():
    a, b = KSWIN(), KSWIN()
    assert a.to_state()["state"]["rng"] != b.to_state()["state"]["rng"]
    xs = np.random.default_rng(1).normal(size=300)
    a.update_many(xs)
    # A seeded detector's generator is random.Random(seed) moved on by the draws made.
    seeded = KSWIN(seed=4)
    seeded.update_many(xs[:101])
    twice = random.Random(4)
    twice.sample(range(70), 30)
    twice.sample(range(70), 30)
    assert seeded.to_state()["state"]["rng"] == list(twice.getstate()[1])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"alpha": 1.5}, r"KSWIN: alpha must be a finite number in \[0.0, 1.0\]"),
        ({"window_size": 50, "stat_size": 30}, "KSWIN: window_size must be an integer >= 60"),
        ({"seed": "a"}, "KSWIN: seed must be an integer or None"),
        ({"window": [1.0, float("nan")]}, r"KSWIN: window\[1\] = nan breaks the rule"),
    ],
)
def test_rejects_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        KSWIN(**params)
