"""min/max downsampling keeps every bucket's extremes: checked against numpy per bucket."""

import numpy as np
import pytest

from opsloop.ui.series_downsampling import min_max_downsample, min_max_downsample_runs


def bucket_extremes(steps, values, buckets):
    """numpy's min and max of each bucket, computed the plain way (a loop over buckets)."""
    low, high = steps.min(), steps.max()
    edges = np.linspace(low, high, buckets + 1)
    found = {}
    for b in range(buckets):
        inside = (steps >= edges[b]) & (steps < edges[b + 1] if b < buckets - 1 else True)
        if inside.any():
            found[b] = (values[inside].min(), values[inside].max())
    return found, edges


def test_every_bucket_keeps_numpys_min_and_max_and_spikes_survive():
    rng = np.random.default_rng(7)
    steps = np.arange(1_000_000)
    values = np.cumsum(rng.normal(size=steps.size))
    spikes = rng.choice(steps.size, 5, replace=False)
    values[spikes] = [1e6, -1e6, 5e5, -5e5, 2e6]
    x, y = min_max_downsample(steps, values, buckets=500)
    assert len(x) <= 1000
    assert set(spikes) <= set(x.tolist())
    assert y.max() == 2e6 and y.min() == -1e6
    expected, edges = bucket_extremes(steps, values, 500)
    got = np.minimum(np.searchsorted(edges, x, side="right") - 1, 499)
    assert sorted(set(got.tolist())) == sorted(expected)
    for b, (lowest, highest) in expected.items():
        mine = y[got == b]
        assert mine.min() == lowest and mine.max() == highest
    # Every point sent is a real point of the series, in step order.
    assert np.array_equal(values[x], y) and np.all(np.diff(x) > 0)


def test_uneven_unsorted_steps_and_nans():
    rng = np.random.default_rng(3)
    steps = np.sort(rng.choice(10**7, 50_000, replace=False))
    values = rng.normal(size=steps.size)
    values[::97] = np.nan
    shuffled = rng.permutation(steps.size)
    x, y = min_max_downsample(steps[shuffled], values[shuffled], buckets=100)
    keep = ~np.isnan(values)
    expected, edges = bucket_extremes(steps[keep], values[keep], 100)
    got = np.minimum(np.searchsorted(edges, x, side="right") - 1, 99)
    for b, (lowest, highest) in expected.items():
        assert y[got == b].min() == lowest and y[got == b].max() == highest
    assert not np.isnan(y).any() and np.all(np.diff(x) >= 0)


def test_short_series_come_back_whole_and_sorted():
    x, y = min_max_downsample(np.array([3, 1, 2]), np.array([30.0, 10.0, 20.0]), buckets=2)
    assert x.tolist() == [1, 2, 3] and y.tolist() == [10.0, 20.0, 30.0]


def test_all_points_at_one_step():
    x, y = min_max_downsample(np.zeros(10, dtype=int), np.arange(10.0), buckets=2)
    assert y.tolist() == [0.0, 9.0] and x.tolist() == [0, 0]


@pytest.mark.parametrize("buckets", [0, -1, 2.5, True])
def test_buckets_must_be_a_positive_integer(buckets):
    with pytest.raises(ValueError, match="buckets must be a positive integer"):
        min_max_downsample(np.arange(3), np.arange(3.0), buckets=buckets)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="one length"):
        min_max_downsample(np.arange(3), np.arange(4.0))


@pytest.mark.parametrize("seed", range(6))
def test_many_series_at_once_keep_what_each_keeps_alone(seed):
    """Random series (long and short, ties, repeated and negative steps, NaNs, one step
    only, all NaN) one after another: each keeps exactly min_max_downsample's points."""
    rng = np.random.default_rng(seed)
    buckets = int(rng.integers(1, 12))
    series = []
    for _ in range(60):
        length = int(rng.choice([0, 1, 2, 2 * buckets, 2 * buckets + 1, rng.integers(3, 400)]))
        steps = np.sort(rng.integers(-50, int(rng.choice([1, 60, 10**6])), length))
        values = rng.integers(0, 4, length).astype(float)  # many ties
        values[rng.random(length) < 0.1] = np.nan
        if rng.random() < 0.05:
            values[:] = np.nan
        series.append((steps, values))
    series = [(s, v) for s, v in series if len(s)]
    starts = np.cumsum([0] + [len(s) for s, _ in series[:-1]])
    steps = np.concatenate([s for s, _ in series])
    values = np.concatenate([v for _, v in series])
    kept = min_max_downsample_runs(starts, steps, values, buckets)
    at = np.searchsorted(starts, kept, side="right") - 1
    for i, (s, v) in enumerate(series):
        want_x, want_y = min_max_downsample(s, v, buckets)
        mine = kept[at == i]
        assert np.array_equal(steps[mine], want_x) and np.array_equal(values[mine], want_y)
