"""CUSUM against the textbook tabular recursion, and its run lengths on known streams."""

from __future__ import annotations

import numpy as np
import pytest

from opsloop.detect import CUSUM

from .streams import CHANGE_AT


def textbook_cusum(xs, k, h, warm_start=30, target=None, sigma=None, mode="both") -> list[int]:
    """Montgomery's tabular CUSUM, restarted (and re-estimated) after each alarm."""
    alarms, i = [], 0
    while i < len(xs):
        mu, sd = target, sigma
        if mu is None or sd is None:
            warm = xs[i : i + warm_start]
            if len(warm) < warm_start:
                break
            mu = warm.mean() if mu is None else mu
            sd = warm.std(ddof=1) if sd is None else sd
            i += warm_start
        up = down = 0.0
        while i < len(xs):
            z = (xs[i] - mu) / sd
            up, down = max(0.0, up + z - k), max(0.0, down - z - k)
            i += 1
            if (mode != "down" and up > h) or (mode != "up" and down > h):
                alarms.append(i - 1)
                break
    return alarms


PARAMS = [
    {"k": 0.5, "h": 5.0, "warm_start": 30},
    {"k": 0.25, "h": 8.0, "warm_start": 100, "mode": "up"},
    {"k": 1.0, "h": 3.0, "target": 0.0, "sigma": 1.0, "mode": "down"},
    {"k": 0.5, "h": 4.0, "warm_start": 50, "target": 0.0},
]


@pytest.mark.parametrize("params", PARAMS, ids=str)
@pytest.mark.parametrize("stream", ["no_change", "abrupt", "gradual", "several"])
def test_same_alarms_as_the_textbook_recursion(params, stream, normal_streams):
    xs = normal_streams[stream]
    expected = textbook_cusum(xs, **params)
    assert CUSUM(**params).update_many(xs).drift_indices.tolist() == expected
    if stream == "several":
        assert len(expected) >= 2


def test_in_control_run_length_matches_the_tables():
    # Montgomery's table 9.3: k = 0.5, h = 5 gives an in-control ARL of 465 (two-sided, as
    # simulated here) and an ARL of 10.4 for a 1-sigma shift.
    xs = np.random.default_rng(0).normal(size=1_000_000)
    alarms = CUSUM(target=0.0, sigma=1.0).update_many(xs).n_drifts
    assert alarms == 2112
    assert 1_000_000 / alarms == pytest.approx(465, rel=0.05)


def test_delay_for_a_one_sigma_shift():
    rng = np.random.default_rng(1)
    delays = []
    for _ in range(300):
        shifted = rng.normal(1.0, 1.0, 200)
        result = CUSUM(target=0.0, sigma=1.0, mode="up").update_many(shifted)
        delays.append(int(result.drift_indices[0]) + 1)
    assert np.mean(delays) == pytest.approx(10.4, abs=0.6)


def test_detection_after_the_change_point(normal_streams):
    # A 1-sigma shift at item 6000 of the shared abrupt stream, estimated reference.
    drifts = CUSUM().update_many(normal_streams["abrupt"]).drift_indices
    first = drifts[drifts >= CHANGE_AT][0]
    assert CHANGE_AT <= first < CHANGE_AT + 30


def test_sums_by_hand():
    detector = CUSUM(k=0.5, h=5.0, target=10.0, sigma=2.0)
    detector.update_many([12.0, 14.0, 8.0])
    # z = 1, 2, -1: S+ = 0.5, 2.0, 0.5 and S- = 0, 0, 0.5.
    assert detector.statistics == (0.5, 0.5)


def test_constant_warm_up_then_any_change_is_detected():
    result = CUSUM(warm_start=5).update_many([3.0] * 10 + [3.5])
    assert result.drift_indices.tolist() == [10]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"h": 0.0}, r"CUSUM: h must be a finite number in \(0.0"),
        ({"warm_start": 1}, "CUSUM: warm_start must be an integer >= 2"),
        ({"sigma": -1.0}, "CUSUM: sigma must be a finite number"),
        ({"mode": "left"}, "CUSUM: mode must be one of"),
    ],
)
def test_rejects_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        CUSUM(**params)
