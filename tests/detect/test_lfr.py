"""LFR: its rates by hand, its bounds against simulation, its delays on known changes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from opsloop.detect import LFR
from opsloop.detect.lfr import _fill_row


def _labels(seed: int, n: int, error_before: float, error_after: float, change_at: int):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    error = np.where(np.arange(n) < change_at, error_before, error_after)
    y_pred = np.where(rng.random(n) < error, 1 - y_true, y_true)
    return y_true, y_pred


def test_rates_follow_the_counts_and_the_decay():
    y_true, y_pred = _labels(0, 500, 0.2, 0.2, 0)
    detector = LFR(decay=0.8, burn_in=10_000)
    detector.update_many(y_true, y_pred)
    counts = np.ones((2, 2))  # counts[predicted, true], one pseudo-count each
    decayed = dict.fromkeys(("tpr", "tnr", "ppv", "npv"), 0.5)
    for t, p in zip(y_true, y_pred, strict=True):
        counts[p, t] += 1
        hit = 1.0 if t == p else 0.0
        for rate, moved in (("tpr", t == 1), ("tnr", t == 0), ("ppv", p == 1), ("npv", p == 0)):
            if moved:
                decayed[rate] = 0.8 * decayed[rate] + (1 - 0.8) * hit
    counted = {
        "tpr": counts[1, 1] / counts[:, 1].sum(),
        "tnr": counts[0, 0] / counts[:, 0].sum(),
        "ppv": counts[1, 1] / counts[1, :].sum(),
        "npv": counts[0, 0] / counts[0, :].sum(),
    }
    rates = detector.rates()
    for rate in counted:
        assert rates[rate]["P"] == counted[rate]
        assert rates[rate]["R"] == decayed[rate]


def test_bounds_match_simulated_quantiles():
    detector = LFR(decay=0.9, warning_level=0.01, detection_level=0.001)
    _fill_row(detector._table, detector._filled, 700, 0.9, detector._tails)
    rng = np.random.default_rng(0)
    hits = rng.random((400_000, 20)) < 0.7
    weights = 0.1 * 0.9 ** np.arange(20)
    r = 0.9**20 * 0.5 + hits @ weights
    expected = np.quantile(r, [0.005, 0.995, 0.0005, 0.9995])
    assert detector._table[700, 20] == pytest.approx(expected, abs=0.012)


def test_false_alarms_and_delay_are_pinned():
    y_true, y_pred = _labels(1, 100_000, 0.1, 0.1, 0)
    assert LFR().update_many(y_true, y_pred).n_drifts == 5
    delays = []
    for seed in range(20):
        y_true, y_pred = _labels(100 + seed, 4000, 0.1, 0.4, 2000)
        drifts = LFR().update_many(y_true, y_pred).drift_indices
        after = drifts[drifts >= 2000]
        delays.append(int(after[0]) - 2000 if after.size else None)
    assert None not in delays
    assert int(np.median(delays)) == 33


def test_detects_a_change_in_one_class_only():
    # Positives become harder (TPR 0.9 -> 0.6) while negatives stay easy.
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, 6000)
    miss = np.where(np.arange(6000) < 3000, 0.1, 0.4)
    wrong = rng.random(6000) < np.where(y_true == 1, miss, 0.05)
    y_pred = np.where(wrong, 1 - y_true, y_true)
    drifts = LFR().update_many(y_true, y_pred).drift_indices
    assert drifts[drifts >= 3000][0] < 3200


def test_update_and_update_many_agree_and_state_round_trips():
    y_true, y_pred = _labels(4, 6000, 0.1, 0.35, 3000)
    whole = LFR(decay=0.95).update_many(y_true, y_pred)
    single = LFR(decay=0.95)
    drifts = [i for i, (t, p) in enumerate(zip(y_true, y_pred, strict=True)) if single.update(t, p)]
    assert drifts == whole.drift_indices.tolist() and drifts
    first = LFR(decay=0.95)
    cut = int(whole.drift_indices[0]) + 1
    first.update_many(y_true[:cut], y_pred[:cut])
    restored = LFR.from_state(json.loads(json.dumps(first.to_state(), allow_nan=False)))
    rest = restored.update_many(y_true[cut:], y_pred[cut:])
    assert (rest.drift_indices + cut).tolist() == drifts[1:]


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([0, 2], [0, 1], r"LFR: y_true\[1\] = 2.0 breaks the rule 'values are 0 or 1"),
        ([0, 1], [0.5, 1], r"LFR: y_pred\[0\] = 0.5 breaks the rule"),
        ([0, 1], [0], "LFR: y_true and y_pred must have the same length, got 2 and 1"),
        ([[0, 1]], [[0, 1]], "LFR: y_true must be a 1-D array"),
    ],
)
def test_bad_pairs_leave_the_state_untouched(y_true, y_pred, match):
    detector = LFR()
    detector.update_many(*_labels(5, 300, 0.1, 0.1, 0))
    before = json.dumps(detector.to_state())
    with pytest.raises(ValueError, match=match):
        detector.update_many(y_true, y_pred)
    with pytest.raises(ValueError, match=r"LFR: y_pred = 3\.0 breaks"):
        detector.update(1, 3)
    assert json.dumps(detector.to_state()) == before
    assert detector.update_many([], []).n_items == 0


def test_rejects_bad_parameters():
    with pytest.raises(ValueError, match="LFR: decay must be a finite number in"):
        LFR(decay=1.0)
    with pytest.raises(ValueError, match="LFR: detection_level must be a finite number in"):
        LFR(warning_level=0.01, detection_level=0.05)
