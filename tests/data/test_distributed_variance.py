"""Near-zero variance on a Dask frame: the merged value counts against pandas' counts, and
the step's decisions with bounded counts against the in-memory step, on a real two-worker
LocalCluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from tests.data.test_distributed_selection import near_constant_frame  # noqa: E402

from opsloop.data.distributed.frames import reduce_partitions  # noqa: E402
from opsloop.data.distributed.selection import selection_statistics  # noqa: E402
from opsloop.data.distributed.variance import ValueCounts  # noqa: E402
from opsloop.data.selection import FeatureFunnel, NearZeroVariance  # noqa: E402


def _counts_of(partition: pd.DataFrame, capacity: int) -> ValueCounts:
    return ValueCounts.of(partition["v"].to_numpy(dtype=np.float64), capacity)


@pytest.mark.parametrize("capacity", [5, 40, 1000])
def test_merged_counts_bound_every_value_as_stated(dask_client, capacity):
    rng = np.random.default_rng(11)
    values = rng.zipf(1.6, size=20_000).clip(max=500).astype(np.float64)
    ddf = dd.from_pandas(pd.DataFrame({"v": values}), npartitions=12, sort=False)
    merged = reduce_partitions(ddf, _counts_of, ValueCounts.merge, capacity)
    truth = pd.Series(values).value_counts()
    assert merged.present == len(values)
    held = pd.Series(merged.counts, index=merged.keys)
    assert len(held) <= capacity
    if len(truth) <= capacity:
        assert merged.error == 0
        pd.testing.assert_series_equal(
            held.sort_index(), truth.sort_index(), check_names=False, check_dtype=False
        )
        return
    assert merged.error > 0
    # Held counts are at most `error` short; a value not held occurs at most `error` times.
    short = truth.reindex(held.index) - held
    assert (short >= 0).all() and (short <= merged.error).all()
    assert (truth.drop(held.index) <= merged.error).all()
    assert truth.index[0] in held.index  # the most frequent value (1.0, a third of the rows)


def _bounded(frame: pd.DataFrame, step: NearZeroVariance, capacity: int):
    ddf = dd.from_pandas(frame, npartitions=5, sort=False)
    selection = selection_statistics(ddf, None, [step], counted_values=capacity)
    return selection, selection.run_step(step, list(frame.columns), 0)


@pytest.mark.parametrize("step", [NearZeroVariance(), NearZeroVariance(top_share=0.3, ratio=2.0)])
def test_bounded_counts_decide_as_in_memory(dask_client, step):
    frame = near_constant_frame().drop(columns=["target"])
    selection, result = _bounded(frame, step, capacity=2)
    counted = selection.statistics.value_counts
    # Over two distinct values: summaries, not exact counts.
    bounded = {name for name, counts in counted.items() if counts.error}
    assert bounded == {"tied_second", "continuous", "mostly_missing", "level", "ident"}
    in_memory = FeatureFunnel(steps=[step]).fit(frame).report_
    drops = {drop.column: drop for drop in result.drops}
    shares = result.measured["top_share"]
    for column in in_memory.columns:
        drop = drops.get(column.column)
        assert (drop is None) == column.kept, column.column
        assert (drop.reason if drop else "") == column.reason, column.column
        if column.column == "ident" or (column.column == "continuous" and step.top_share < 0.5):
            # Every value once: not told apart from the forgotten ones, share left empty.
            assert column.top_share == 1 / len(frame)
            assert shares[column.column] is None
        else:
            assert shares[column.column] == column.top_share, column.column


def test_a_ratio_known_only_as_a_bound_is_reported_as_one(dask_client):
    # 1000 rows in five partitions: 190 zeros and ten values seen once in each partition.
    frame = pd.DataFrame({"near": np.where(np.arange(1000) % 20 < 19, 0.0, np.arange(1000.0))})
    in_memory = FeatureFunnel(steps=[NearZeroVariance()]).fit(frame).report_["near"]
    assert (
        in_memory.reason
        == "top value in 95.0% of non-missing rows, 950x the second (limits 90% and 19x)"
    )
    selection, result = _bounded(frame, NearZeroVariance(), capacity=10)
    # Each partition holds 11 values: the eleventh largest count (1) is taken off all of
    # them, leaving 189 zeros and an error of 1; five partitions: error 5.
    summary = selection.statistics.value_counts["near"]
    assert (summary.keys.tolist(), summary.counts.tolist(), summary.error) == ([0.0], [945], 5)
    (drop,) = result.drops
    assert (drop.value, drop.threshold) == (0.95, 0.9)
    assert drop.reason == (
        "top value in 95.0% of non-missing rows, at least 190x the second (limits 90% and "
        "19x; the column has more than 10 distinct values, so the second is known to be at "
        "most 5)"
    )


def test_counts_too_small_to_decide_raise_naming_the_column(dask_client):
    frame = near_constant_frame().drop(columns=["target"])[["constant", "word"]]
    with pytest.raises(ValueError, match=r"column 'word' has more than 1 distinct values"):
        _bounded(frame, NearZeroVariance(), capacity=1)
    with pytest.raises(ValueError, match="counted_values must be an integer >= 1, got 0"):
        _bounded(frame, NearZeroVariance(), capacity=0)
