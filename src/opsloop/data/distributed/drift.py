"""Drift summaries of a Dask frame's columns, for :func:`~opsloop.data.drift.compare`.

**Exact mode.** A column is summarised partition by partition with the pandas path's own
:func:`~opsloop.data.drift.summary.summarize` and the summaries merged
(:meth:`~opsloop.data.drift.summary.ColumnSummary.merge`): counts are added (chi-square
and the count distances on exact counts), and each partition's sorted values are merged into
the column's sorted sample (KS, Wasserstein, Anderson-Darling and the binned distances on
every value). Comparisons on the merged summaries are therefore the in-memory results. The
client holds one column's sorted values at a time (8 bytes a value), so a column must fit
the client's memory; the frame need not.

A reference column whose kind is not given is typed like the pandas path does it: its
logical type over the whole column (:func:`~opsloop.data.distributed.schema.column_types`),
and a numeric column with few distinct values is discrete. Partitions send their value
counts instead of their values while they have few distinct values, so a discrete column of
a billion rows moves a few counts per partition.

Not yet here: a sketch mode (quantile sketches with stated error bounds on every p-value)
for columns that do not fit the client's memory.

>>> import dask, numpy as np, pandas as pd, dask.dataframe as dd
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(size=300)})
>>> cur = pd.DataFrame({"x": rng.normal(1.0, size=300)})
>>> from opsloop.data.drift import compare
>>> with dask.config.set(scheduler="synchronous"):
...     on_dask = compare(ref, dd.from_pandas(cur, npartitions=3))
>>> on_dask["x"].statistic == compare(ref, cur)["x"].statistic, on_dask["x"].drifted
(True, True)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opsloop.data.distributed.frames import map_partitions_checked
from opsloop.data.distributed.schema import column_types
from opsloop.data.drift.kernels import sort_floats
from opsloop.data.drift.numeric import SortedSample
from opsloop.data.drift.summary import (
    MAX_DISCRETE_LEVELS,
    ColumnSummary,
    _is_discrete,
    _run_counts,
    summarize,
)

_KIND_OF_TYPE = {"bool": "bool", "category": "categorical", "datetime": "datetime"}


def summarize_dask(ddf, name: str, kind: str | None = None) -> ColumnSummary:
    """The :class:`~opsloop.data.drift.summary.ColumnSummary` of column ``name`` of the
    Dask frame ``ddf`` as ``kind`` (inferred from the whole column when ``None``), equal to
    ``summarize`` of the column in memory.

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"n": [1, 2] * 20}), npartitions=4)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     s = summarize_dask(ddf, "n")
    >>> s.kind, s.counts
    ('discrete', {1.0: 20, 2.0: 20})
    """
    if name not in ddf.columns:
        raise ValueError(f"column {name!r} is not in the frame")
    if kind is None:
        logical = column_types(ddf[[name]])[name]
        if logical in ("int", "float"):
            return _numeric_or_discrete(ddf, name)
        kind = _KIND_OF_TYPE.get(logical, "text")
    parts = map_partitions_checked(ddf, _summarize_partition, name, kind, columns=[name])
    return functools.reduce(ColumnSummary.merge, parts)


def _summarize_partition(partition: pd.DataFrame, name: str, kind: str) -> ColumnSummary:
    return summarize(partition[name], kind, name)


@dataclass(frozen=True)
class _NumericPart:
    """A partition's numeric column: its summary, with the sorted values replaced by their
    value counts while there are few distinct values."""

    summary: ColumnSummary
    levels: np.ndarray | None = None
    counts: np.ndarray | None = None

    def values(self) -> np.ndarray:
        if self.levels is None:
            return self.summary.sample.values
        return np.repeat(self.levels, self.counts)


def _numeric_partition(partition: pd.DataFrame, name: str) -> _NumericPart:
    summary = summarize(partition[name], "numeric", name)
    values = summary.sample.values
    if values.size == 0:
        return _NumericPart(summary)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    if starts.size > MAX_DISCRETE_LEVELS:
        return _NumericPart(summary)
    counts = np.diff(np.r_[starts, values.size])
    empty = SortedSample(values[:0], summary.sample.n_missing, summary.sample.n_nonfinite)
    slim = ColumnSummary(
        summary.name, summary.kind, summary.n_rows, summary.n_missing, summary.n_invalid, empty
    )
    return _NumericPart(slim, values[starts], counts)


def _numeric_or_discrete(ddf, name: str) -> ColumnSummary:
    parts = map_partitions_checked(ddf, _numeric_partition, name, columns=[name])
    n_rows = sum(p.summary.n_rows for p in parts)
    n_missing = sum(p.summary.n_missing for p in parts)
    n_invalid = sum(p.summary.n_invalid for p in parts)
    if all(p.levels is not None or p.summary.sample.n == 0 for p in parts):
        levels = np.concatenate([p.levels for p in parts if p.levels is not None] or [[]])
        counts = np.concatenate([p.counts for p in parts if p.counts is not None] or [[]])
        distinct = np.unique(levels)
        n = int(counts.sum())
        if _is_discrete_counts(distinct.size, n):
            totals = np.zeros(distinct.size, dtype=np.int64)
            np.add.at(totals, np.searchsorted(distinct, levels), counts.astype(np.int64))
            return ColumnSummary(
                name,
                "discrete",
                n_rows,
                n_missing,
                n_invalid,
                counts={float(v): int(c) for v, c in zip(distinct, totals, strict=True)},
            )
    values = np.concatenate([p.values() for p in parts])
    sample = SortedSample(
        sort_floats(values),
        sum(p.summary.sample.n_missing for p in parts),
        sum(p.summary.sample.n_nonfinite for p in parts),
    )
    if _is_discrete(sample.values):
        counts = _run_counts(sample.values)
        return ColumnSummary(name, "discrete", n_rows, n_missing, n_invalid, counts=counts)
    return ColumnSummary(name, "numeric", n_rows, n_missing, n_invalid, sample=sample)


def _is_discrete_counts(n_distinct: int, n: int) -> bool:
    # summary._is_discrete's rule on counts instead of the sorted values.
    from opsloop.data.drift.summary import MIN_LEVEL_REPEATS

    return n > 0 and n_distinct <= MAX_DISCRETE_LEVELS and n_distinct * MIN_LEVEL_REPEATS <= n
