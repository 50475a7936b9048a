"""MD3: the reference and density by hand, and detection on margin shifts."""

from __future__ import annotations

import numpy as np
import pytest

from opsloop.detect import MD3


def test_reference_and_density_by_hand():
    rng = np.random.default_rng(0)
    margins = rng.normal(1.5, 1.0, 700)
    detector = MD3(margin_width=1.0, chunk_size=500, n_folds=5, sensitivity=100.0)
    detector.update_many(margins)
    inside = (np.abs(margins) <= 1.0).astype(float)
    folds = inside[:500].reshape(5, 100).mean(axis=1)
    reference, sigma = detector.reference
    assert reference == inside[:500].mean()
    assert sigma == pytest.approx(max(folds.std(ddof=1), 1 / 100), abs=1e-15)
    density = reference
    for value in inside[500:]:
        density = (499 / 500) * density + (1 - 499 / 500) * value
    assert detector.density == density


def test_detects_margin_density_change_and_stays_quiet_otherwise():
    rng = np.random.default_rng(1)
    quiet = rng.normal(2.0, 1.0, 200_000)
    assert MD3(sensitivity=3.0).update_many(quiet).n_drifts == 0
    # The classifier's inputs drift towards its boundary: more margins within [-1, 1].
    delays = []
    for _ in range(20):
        margins = np.concatenate([rng.normal(2.0, 1.0, 3000), rng.normal(1.2, 1.0, 1500)])
        drifts = MD3(sensitivity=3.0).update_many(margins).drift_indices
        delays.append(int(drifts[drifts >= 3000][0]) - 3000)
    # The density moves from 0.16 to 0.41; 3 sigma_ref is about 0.11, which the forgetting
    # average (factor 499/500) passes after about 290 items.
    assert np.median(delays) == 269.5


def test_fixed_reference_starts_testing_at_once():
    detector = MD3(reference_density=0.2, reference_std=0.02, chunk_size=100)
    # Every margin inside: the density climbs from 0.2 by 1% of the gap per item.
    result = detector.update_many(np.zeros(10))
    # 0.2 + 0.8 * (1 - 0.99**n) > 0.2 + 2 * 0.02 first when n = 6.
    assert result.drift_indices.tolist() == [5]


def test_probability_margins():
    proba = np.array([[0.6, 0.3, 0.1], [0.34, 0.33, 0.33]])
    assert MD3.margin_from_proba(proba) == pytest.approx([0.3, 0.01])
    assert MD3.margin_from_proba(np.array([0.75, 0.25])).tolist() == [0.5, -0.5]


def test_rejects_half_a_reference():
    with pytest.raises(ValueError, match="MD3: give both reference_density and reference_std"):
        MD3(reference_density=0.3)
