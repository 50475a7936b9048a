"""KS and Wasserstein from quantile sketches: equal to scipy's where the sketches hold every
value, and within the stated bounds of the exact values where they do not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from opsloop.data.drift import SortedSample, compare
from opsloop.data.drift.sketched import SketchedSample, sketch_ks, sketch_wasserstein


def test_with_every_value_kept_the_statistics_are_scipys():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), np.round(rng.normal(0.3, size=200), 1)  # b has ties
    ref, cur = SketchedSample.of_values(a), SketchedSample.of_values(b)
    assert ref.rank_error == cur.rank_error == 0.0
    ks = sketch_ks(ref, cur)
    expected = stats.ks_2samp(a, b, method="asymp")
    assert ks.statistic == pytest.approx(expected.statistic, abs=1e-15)
    assert ks.bounds == (ks.statistic, ks.statistic)
    assert ks.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    w = sketch_wasserstein(ref, SortedSample.from_values(b))
    assert w.statistic == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_sketched_statistics_lie_within_their_bounds_on_heavy_ties(seed):
    rng = np.random.default_rng(seed)
    n = 60_000
    # 400 levels, a fifth of the rows on one of them in the reference, a sixth in the current
    a = rng.integers(0, 400, size=n).astype(float)
    a[rng.random(n) < 0.2] = 200.0
    b = rng.integers(0, 400, size=n).astype(float)
    b[rng.random(n) < 1 / 6] = 200.0
    ref, cur = SketchedSample.of_values(a, k=200), SketchedSample.of_values(b, k=200)
    assert ref.rank_error > 0.01 and cur.rank_error > 0.01
    ks = sketch_ks(ref, cur)
    exact = stats.ks_2samp(a, b, method="asymp")
    bound = ref.rank_error + cur.rank_error
    assert ks.bounds == (max(0.0, ks.statistic - bound), min(1.0, ks.statistic + bound))
    assert ks.bounds[0] <= exact.statistic <= ks.bounds[1]
    assert ks.p_value_bounds[0] <= exact.pvalue <= ks.p_value_bounds[1]
    w = sketch_wasserstein(ref, cur, normalize=True)
    assert w.bounds[0] <= stats.wasserstein_distance(a, b) / np.std(a) <= w.bounds[1]


def test_merged_sketches_count_and_bound_like_one():
    rng = np.random.default_rng(3)
    chunks = [rng.exponential(size=250_000) for _ in range(8)]
    first, *others = [SketchedSample.of_values(c) for c in chunks]
    merged = first.merge(others)
    whole = np.sort(np.concatenate(chunks))
    assert merged.n == whole.size and merged.maximum == whole[-1]
    assert merged.std() == pytest.approx(np.std(whole), rel=1e-12)
    # The estimated CDF at every value, retained or not, within the stated rank error (a
    # retained value's share is the sketch's weighted rank, not its place among the kept).
    points, shares = merged.cdf_steps()
    at = np.searchsorted(points, whole, side="right") - 1
    estimate = np.where(at >= 0, shares[np.maximum(at, 0)], 0.0)
    exact = np.searchsorted(whole, whole, side="right") / whole.size
    assert 0 < merged.rank_error < 0.003
    assert np.abs(estimate - exact).max() <= merged.rank_error


def test_sketch_mode_in_memory_states_its_mode_and_rejects_tests_it_cannot_bound():
    rng = np.random.default_rng(4)
    import pandas as pd

    ref = pd.DataFrame({"x": rng.normal(size=5000)})
    cur = pd.DataFrame({"x": rng.normal(size=5000)})
    result = compare(ref, cur, mode="sketch", sketch_k=100)
    assert result.to_dict()["dataset"]["mode"] == "sketch"
    assert result["x"].sketched and "(sketched: adjusted p-value within [" in result["x"].reason
    assert compare(ref, cur).mode == "exact" and not compare(ref, cur)["x"].sketched
    with pytest.raises(ValueError, match="the sketch mode computes \\('ks', 'wasserstein'\\)"):
        compare(ref, cur, mode="sketch", tests={"x": "psi"})
    with pytest.raises(ValueError, match="mode must be one of auto, exact, sketch, got 'fast'"):
        compare(ref, cur, mode="fast")


def test_the_bound_holds_on_real_pixel_data_of_seventeen_tied_levels():
    from sklearn.datasets import load_digits

    pixels = load_digits().data  # 1,797 images, 64 pixels of intensity 0-16: ties everywhere
    first, second = pixels[:900], pixels[900:]
    checked = 0
    for column in range(64):
        a, b = first[:, column], second[:, column]
        if np.unique(np.r_[a, b]).size < 3:
            continue  # a border pixel, blank in (nearly) every image
        # k = 16 keeps far fewer values than 900, so the sketches estimate.
        ref, cur = SketchedSample.of_values(a, k=16), SketchedSample.of_values(b, k=16)
        assert ref.rank_error > 0 and cur.rank_error > 0
        ks = sketch_ks(ref, cur)
        exact = stats.ks_2samp(a, b, method="asymp")
        assert ks.bounds[0] <= exact.statistic <= ks.bounds[1], column
        assert ks.p_value_bounds[0] <= exact.pvalue <= ks.p_value_bounds[1], column
        checked += 1
    assert checked >= 50


def test_a_verdict_the_sketch_cannot_tell_is_not_counted_as_drift():
    # 200,000 unchanged rows a side: the critical KS distance at alpha 0.05 is about 0.0043,
    # far below the k = 200 sketches' rank errors (about 1.3% each), so the sketched
    # statistic's own error decides the point estimate. Only a shift that clears the whole
    # interval may count as drift.
    rng = np.random.default_rng(11)
    n = 200_000
    ref = pd.DataFrame({"same": rng.normal(size=n), "moved": rng.normal(size=n)})
    cur = pd.DataFrame({"same": rng.normal(size=n), "moved": rng.normal(0.5, size=n)})
    result = compare(ref, cur, mode="sketch", sketch_k=200)
    same, moved = result["same"], result["moved"]
    exact = stats.ks_2samp(ref["same"], cur["same"])
    low, high = same.p_adjusted_bounds
    assert exact.pvalue > 0.05  # unchanged, as the exact test says
    assert low < 0.05 <= high and not same.verdict_certain
    assert not same.drifted
    assert "verdict uncertain within it, so not drifted): stable" in same.reason
    assert moved.drifted and moved.verdict_certain and moved.p_adjusted_bounds[1] < 0.05
    assert result.n_drifted == 1
