"""Metric histories shrunk in the database (``metric_histories(..., buckets=n)``): the points
are those ``min_max_downsample`` keeps of the whole series, on series with ties, repeated
steps, steps logged out of order, negative steps and one step only, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from opsloop.errors import InvalidArgumentError
from opsloop.store import tables
from opsloop.store.metric_blocks import LEVEL_SHIFTS
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


def _random_series(rng, kind: str):
    n = 20_000
    if kind == "dense, stride 7":  # spans level 16 blocks when a bucket is wide
        steps = rng.permutation(np.arange(n) * 7)
        values = rng.normal(size=n)
        values[rng.integers(0, n, 5)] = [50.0, -50.0, 50.0, 49.0, -50.0]  # spikes, tied
        return steps, values
    if kind == "ties on repeated steps":
        return rng.integers(0, 3_000, n), rng.integers(0, 3, n).astype(float)
    if kind == "huge sparse steps":  # every block holds one point or few
        return rng.integers(-(2**61), 2**61, n), rng.normal(size=n)
    return rng.integers(-(10**6), 10**6, n), np.round(rng.normal(size=n), 2)  # irregular


def _write_shuffled(store, run_id, key, steps, values, rng) -> None:
    """Write the points in pieces of random sizes (some of one point), so stored summaries
    are merged from many writes, and blocks get points out of step order."""
    cut = np.sort(rng.choice(np.arange(1, len(steps)), 40, replace=False))
    cut = np.unique(np.r_[cut, cut[:10] + 1])  # ten pieces of a single point
    for part in np.split(np.arange(len(steps)), cut):
        batch = MetricBatch(
            (key,) * len(part), values[part], steps[part], np.abs(steps[part]) % 10**9 + 7
        )
        store.write_batch(run_id, batch)


def _reference_blocks(points: pd.DataFrame) -> list[tuple]:
    """metric_blocks rows recomputed from the points with pandas: per (key, level, block),
    the count, first and last step, the minimum first by (value, step, seq) and the
    maximum last."""
    rows = []
    for level, shift in enumerate(LEVEL_SHIFTS):
        frame = points.assign(block=points["step"] // (1 << shift))
        frame = frame.sort_values(["key_id", "block", "value", "step", "seq"], kind="stable")
        groups = frame.groupby(["key_id", "block"], sort=True)
        # frame is sorted by (key_id, block), so heads, tails and aggregates line up.
        low, high = groups.head(1), groups.tail(1)
        rows += zip(
            low["key_id"].tolist(),
            [level] * len(low),
            low["block"].tolist(),
            groups.size().tolist(),
            groups["step"].min().tolist(),
            groups["step"].max().tolist(),
            low["value"].tolist(),
            low["step"].tolist(),
            low["seq"].tolist(),
            high["value"].tolist(),
            high["step"].tolist(),
            high["seq"].tolist(),
            strict=True,
        )
    return sorted(rows)


def _stored(store, run_id: str):
    blocks, points = tables.metric_blocks, tables.metrics
    with store.db.read() as connection:
        pk = connection.execute(
            sa.select(tables.runs.c.id).where(tables.runs.c.run_id == run_id)
        ).scalar_one()
        stored = connection.execute(
            sa.select(*[c for c in blocks.c if c.name != "run_id"])
            .where(blocks.c.run_id == pk)
            .order_by(blocks.c.key_id, blocks.c.level, blocks.c.block)
        ).all()
        raw = connection.execute(
            sa.select(points.c.key_id, points.c.step, points.c.seq, points.c.value).where(
                points.c.run_id == pk
            )
        ).all()
    frame = pd.DataFrame(raw, columns=["key_id", "step", "seq", "value"])
    return [tuple(row) for row in stored], frame


@pytest.mark.parametrize(
    "kind", ["dense, stride 7", "ties on repeated steps", "huge sparse steps", "irregular"]
)
def test_summaries_written_in_pieces_give_min_max_downsample_of_the_whole_series(store, kind):
    rng = np.random.default_rng(sum(map(ord, kind)))
    steps, values = _random_series(rng, kind)
    run_id = store.create_run("e")
    _write_shuffled(store, run_id, "loss", steps, values, rng)
    _write_shuffled(store, run_id, "acc", steps[:5_000], -values[:5_000], rng)
    stored, points = _stored(store, run_id)
    assert stored == _reference_blocks(points)
    for key, n in (("loss", len(steps)), ("acc", 5_000)):
        # In step then logging order, which min_max_downsample's stable sort keeps.
        whole = store.metric_history(run_id, key)
        assert len(whole) == n
        for buckets in (1, 2, 3, 17, 600, n // 2 - 1):
            got = store.metric_histories([run_id], [key], buckets=buckets)
            want_steps, want_values = min_max_downsample(
                whole["step"].to_numpy(), whole["value"].to_numpy(), buckets
            )
            assert got["step"].tolist() == want_steps.tolist(), (key, buckets)
            assert got["value"].tolist() == want_values.tolist(), (key, buckets)
            # The spikes survive: the series' extremes are drawn.
            assert got["value"].max() == whole["value"].max()
            assert got["value"].min() == whole["value"].min()
            stamps_ms = (got["timestamp"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ms")
            assert stamps_ms.tolist() == (np.abs(want_steps) % 10**9 + 7).tolist()


def test_points_written_and_charts_read_through_the_server_keep_the_summaries(store):
    from tests.server.running import running_server

    from opsloop.server import create_app
    from opsloop.tracking.http_store import HttpTrackingStore

    rng = np.random.default_rng(16)
    steps, values = _random_series(rng, "ties on repeated steps")
    with running_server(create_app(store.db, store.artifacts)) as url:
        remote = HttpTrackingStore(url)
        run_id = remote.create_run("e")
        _write_shuffled(remote, run_id, "loss", steps, values, rng)
        got = remote.metric_histories([run_id], ["loss"], buckets=50)
        remote.close()
    stored, points = _stored(store, run_id)
    assert stored == _reference_blocks(points)
    whole = store.metric_history(run_id, "loss")
    want_steps, want_values = min_max_downsample(
        whole["step"].to_numpy(), whole["value"].to_numpy(), 50
    )
    assert got["step"].tolist() == want_steps.tolist()
    assert got["value"].tolist() == want_values.tolist()


def test_runs_with_long_series_give_their_short_ones_whole_whatever_their_keys(store):
    rng = np.random.default_rng(5)
    a, b, c = (store.create_run("e") for _ in range(3))
    steps, values = _series(rng, 3_000, "spike")
    for run_id, short_keys in ((a, ["auc"]), (b, ["auc", "f1"]), (c, [])):
        if run_id != c:
            _log(store, run_id, "loss", steps, values)
        for key in short_keys:
            _log(store, run_id, key, [0, 5, 9], rng.random(3))
    _log(store, c, "loss", np.arange(30), np.linspace(1, 0, 30))
    for keys in (None, ["auc", "loss"], ["f1"]):
        got = store.metric_histories([c, b, a], keys, buckets=20)
        whole = store.metric_histories([c, b, a], keys)
        groups = list(whole.groupby(["run_id", "key"], sort=False).groups)
        assert list(got.groupby(["run_id", "key"], sort=False).groups) == groups
        for run_id, key in groups:
            mine = got[(got.run_id == run_id) & (got.key == key)].reset_index(drop=True)
            theirs = whole[(whole.run_id == run_id) & (whole.key == key)].reset_index(drop=True)
            if key == "loss" and run_id != c:
                want_steps, want_values = min_max_downsample(steps, values, 20)
                assert mine["step"].tolist() == want_steps.tolist()
                assert mine["value"].tolist() == want_values.tolist()
            else:
                assert mine.equals(theirs)
