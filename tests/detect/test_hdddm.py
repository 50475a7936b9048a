"""HDDDM: distances against hand-made histograms, the threshold rule, known changes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from opsloop.detect import HDDDM


def _hellinger(p, q):
    p, q = p / p.sum(), q / q.sum()
    return np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum())


def test_distance_is_hellinger_of_the_batch_histograms():
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=100), rng.normal(0.3, 1, size=100)
    detector = HDDDM(batch_size=100)
    detector.update_many(np.concatenate([first, second]))
    # Ten equal-width bins over the first batch's range; later values clip into end bins.
    edges = np.linspace(first.min(), first.max(), 11)
    reference = np.histogram(first, edges)[0].astype(float)
    current = np.histogram(np.clip(second, edges[0], edges[-1]), edges)[0].astype(float)
    assert detector.distances["last_distance"] == pytest.approx(
        _hellinger(reference, current), abs=1e-12
    )


def test_threshold_is_the_t_bound_on_past_jumps():
    rng = np.random.default_rng(1)
    detector = HDDDM(batch_size=100, alpha=0.05)
    stream = rng.normal(size=700)
    detector.update_many(stream[:600])
    jumps = np.array(detector.distances["jumps"])
    assert jumps.size == 4  # batches 3 to 6 each add one jump (batch 2 sets the first distance)
    before = detector.distances["last_distance"]
    threshold = jumps.mean() + stats.t.ppf(0.975, jumps.size - 1) * jumps.std(ddof=1) / 2
    signalled = detector.update_many(stream[600:]).drift_detected
    after = detector.distances
    if signalled:
        assert after["jumps"] == []
    else:
        assert after["jumps"][-1] == pytest.approx(abs(after["last_distance"] - before))
        assert after["jumps"][-1] <= threshold


def test_gamma_rule_and_known_change():
    rng = np.random.default_rng(2)
    quiet = rng.normal(size=200 * 500)
    assert HDDDM(batch_size=200, gamma=5.0).update_many(quiet).n_drifts == 0
    stream = np.concatenate([rng.normal(0, 1, 4000), rng.normal(1, 1, 2000)])
    drifts = HDDDM(batch_size=200, gamma=5.0).update_many(stream).drift_indices
    # 999 is an early false alarm (three jumps give a poor spread estimate); the change is
    # found at the end of the first batch after it.
    assert drifts.tolist() == [999, 4199]


def test_default_false_alarms_are_pinned():
    quiet = np.random.default_rng(3).normal(size=100 * 1000)
    assert HDDDM().update_many(quiet).n_drifts == 95


def test_several_features_average_the_distance():
    rng = np.random.default_rng(4)
    stable = rng.normal(size=(3000, 3))
    stable[2000:, 1] += 1.5  # one of three features shifts
    detector = HDDDM(batch_size=250, gamma=3.0)
    drifts = detector.update_many(stable).drift_indices
    assert drifts.tolist() == [2249]
    assert detector.n_features == 3
    with pytest.raises(ValueError, match="HDDDM: xs has 2 features per item, the stream has 3"):
        detector.update_many(np.zeros((4, 2)))
    detector.update(np.zeros(3))
    assert detector.n_seen == 3001
