"""Metric histories shrunk in the database (``metric_histories(..., buckets=n)``): the points
are those ``min_max_downsample`` keeps of the whole series, on series with ties, repeated
steps, steps logged out of order, negative steps and one step only, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from opsloop.errors import InvalidArgumentError
from opsloop.tracking.metric_buffer import MetricBatch
from opsloop.ui.series_downsampling import min_max_downsample


def _log(store, run_id: str, key: str, steps, values) -> None:
    steps = np.asarray(steps, dtype=np.int64)
    batch = MetricBatch((key,) * len(steps), np.asarray(values, float), steps, steps + 1000)
    for piece in batch.pieces(50_000):
        store.write_batch(run_id, piece)


def _series(rng, n: int, kind: str):
    if kind == "ties":  # few distinct values, so every bucket has tied extremes
        return rng.permutation(np.arange(n) * 3), rng.integers(0, 4, n).astype(float)
    if kind == "repeated steps":  # several points per step, out of order
        return rng.integers(-500, 500, n), np.round(rng.normal(size=n), 1)
    if kind == "constant":
        return np.arange(n), np.full(n, 0.5)
    if kind == "one step":
        return np.full(n, 7), rng.normal(size=n)
    steps = np.arange(n) * 5
    values = np.sin(steps / 100.0) + 0.01 * rng.normal(size=n)
    values[n // 3] = 40.0  # the spike a chart must keep
    return steps, values


@pytest.mark.parametrize("kind", ["spike", "ties", "repeated steps", "constant", "one step"])
@pytest.mark.parametrize("buckets", [1, 7, 300])
def test_the_points_kept_are_min_max_downsample_of_the_whole_series(store, kind, buckets):
    rng = np.random.default_rng(len(kind) * 100 + buckets)
    steps, values = _series(rng, 5_000, kind)
    run_id = store.create_run("e")
    _log(store, run_id, "loss", steps, values)
    got = store.metric_histories([run_id], ["loss"], buckets=buckets)
    want_steps, want_values = min_max_downsample(steps, values, buckets)
    assert got["step"].tolist() == want_steps.tolist()
    assert got["value"].tolist() == want_values.tolist()
    # Each point keeps its own timestamp (step + 1000 here).
    stamps_ms = (got["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ms")
    assert stamps_ms.tolist() == (want_steps + 1000).tolist()
    assert len(got) <= 2 * buckets


def test_short_series_come_whole_beside_long_ones(store):
    rng = np.random.default_rng(3)
    long_run, short_run = store.create_run("e"), store.create_run("e")
    steps, values = _series(rng, 20_000, "spike")
    _log(store, long_run, "loss", steps, values)
    _log(store, long_run, "auc", [0, 1, 2], [0.5, 0.6, 0.7])
    _log(store, short_run, "loss", np.arange(40), np.linspace(1, 0, 40))
    got = store.metric_histories([short_run, long_run], buckets=20)
    whole = store.metric_histories([short_run, long_run])
    # Ordered by run then key as without buckets; the short series unchanged.
    assert list(got.groupby(["run_id", "key"], sort=False).groups) == list(
        whole.groupby(["run_id", "key"], sort=False).groups
    )
    for run_id, key in [(short_run, "loss"), (long_run, "auc")]:
        mine = got[(got.run_id == run_id) & (got.key == key)].reset_index(drop=True)
        theirs = whole[(whole.run_id == run_id) & (whole.key == key)].reset_index(drop=True)
        assert mine.equals(theirs)
    reduced = got[(got.run_id == long_run) & (got.key == "loss")]
    want_steps, want_values = min_max_downsample(steps, values, 20)
    assert reduced["step"].tolist() == want_steps.tolist()
    assert reduced["value"].tolist() == want_values.tolist()
    assert 40.0 in reduced["value"].tolist()


@pytest.mark.parametrize("buckets", [0, -1, True, 1.5])
def test_buckets_must_be_a_positive_integer(store, buckets):
    with pytest.raises(InvalidArgumentError, match="buckets must be a positive integer"):
        store.metric_histories([store.create_run("e")], buckets=buckets)
