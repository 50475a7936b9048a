"""Drift summaries of a Dask frame's columns, for :func:`~opsloop.data.drift.compare`.

**Exact mode.** A column is summarised partition by partition with the pandas path's own
:func:`~opsloop.data.drift.summary.summarize` and the summaries merged
(:meth:`~opsloop.data.drift.summary.ColumnSummary.merge`): counts are added (chi-square
and the count distances on exact counts), and each partition's sorted values are merged into
the column's sorted sample (KS, Wasserstein, Anderson-Darling and the binned distances on
every value). Comparisons on the merged summaries are therefore the in-memory results. Up to
:data:`COLUMNS_PER_PASS` columns that send sorted values are summarised per pass over the
partitions, and the client holds their sorted values (8 bytes a value): that many columns
must fit the client's memory; the frame need not. Columns that send counts (categorical,
bool and discrete ones) go with the first pass, which reads them with its other columns:
each pass reads every partition once more (:func:`column_passes`).

A reference column whose kind is not given is typed like the pandas path does it: its
logical type over the whole column (:func:`~opsloop.data.distributed.schema.column_types`),
and a numeric column with few distinct values is discrete. Partitions send their value
counts instead of their values while they have few distinct values, so a discrete column of
a billion rows moves a few counts per partition.

**Sketch mode.** With ``sketch_k``, each partition sends a KLL sketch of its numeric-like
values (:class:`~opsloop.data.drift.sketched.SketchedSample`: a few kilobytes, with exact
counts and moments) instead of the values; the sketches are merged on the workers, a tree
of merges eight partitions a task (:func:`~.frames.reduce_partitions`), so the calling
process receives one merged sketch per column whatever the number of partitions, and KS and
Wasserstein come with the bounds :mod:`opsloop.data.drift.sketched` states. Count-like columns send
their exact counts as in the exact mode, so chi-square and the count distances are the
exact mode's. Numeric columns with few levels are typed discrete from exact level counts,
as in the exact mode.

**Which mode.** :func:`choose_mode` decides ``compare``'s ``mode="auto"``: exact when the
exact mode's sorted values fit in half the memory there is to hold them, else sketch.

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

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opsloop.data.distributed.frames import (
    byte_size,
    frame_rows,
    map_partitions_checked,
    reduce_partitions,
)
from opsloop.data.distributed.schema import column_types
from opsloop.data.drift.kernels import merge_sorted
from opsloop.data.drift.numeric import SortedSample
from opsloop.data.drift.sketched import SketchedSample
from opsloop.data.drift.summary import (
    COUNT_KINDS,
    MAX_DISCRETE_LEVELS,
    ColumnSummary,
    ReferenceProfile,
    _is_discrete,
    _run_counts,
    merge_summaries,
    summarize,
)

_KIND_OF_TYPE = {"bool": "bool", "category": "categorical", "datetime": "datetime"}


#: Columns with sorted values summarised in one pass over the partitions: the client holds
#: the sorted values of at most this many columns at a time.
COLUMNS_PER_PASS = 8
# A reference column typed as a number: numeric, or discrete when it has few levels.
_NUMBER = "number"


#: Share of the memory limit the exact mode's sorted values may take (the rest: the copy a
#: merge sorts into, the partitions in flight).
EXACT_MEMORY_SHARE = 0.5
_BYTES_PER_VALUE = 8


def choose_mode(mode: str, frames: Sequence, columns: Sequence[str]) -> tuple[str, str]:
    """``(mode, reason)`` for ``compare`` on Dask ``frames``: ``mode`` itself unless it is
    ``auto``; then ``exact`` when the exact mode's sorted values fit, ``sketch`` otherwise.

    The rule: the exact mode gathers 8 bytes per value of every numeric-like column (the
    ``columns`` that are not bool or categorical) of every Dask frame, rows counted, in
    the calling process, and the workers hold partitions of them while merging. It is
    chosen when those bytes are at most :data:`EXACT_MEMORY_SHARE` of the smaller of the
    cluster's memory (the sum of the workers' memory limits when a ``distributed.Client``
    is active, else this machine's memory) and this machine's available memory.

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"x": [1.0, 2.0]}), npartitions=1)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     chosen, reason = choose_mode("auto", [ddf], ["x"])
    >>> chosen, reason.startswith("exact: the sorted values (16 bytes)")
    ('exact', True)
    """
    if mode != "auto":
        return mode, f"mode={mode!r} asked for"
    needed = 0
    for frame in frames:
        sampled = [
            name
            for name in columns
            if name in frame.columns
            and not (
                pd.api.types.is_bool_dtype(frame.dtypes[name])
                or isinstance(frame.dtypes[name], pd.CategoricalDtype)
            )
        ]
        if sampled:
            needed += _BYTES_PER_VALUE * len(sampled) * frame_rows(frame)
    cluster, where = _cluster_memory()
    available = _available_memory()
    limit = min(cluster, available)
    sizes = (
        f"the sorted values ({byte_size(needed)}) against {EXACT_MEMORY_SHARE:.0%} of "
        f"{byte_size(limit)} ({where} {byte_size(cluster)}, available here {byte_size(available)})"
    )
    if needed <= EXACT_MEMORY_SHARE * limit:
        return "exact", f"exact: {sizes} fit"
    return "sketch", f"sketch: {sizes} do not fit"


def _cluster_memory() -> tuple[int, str]:
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):  # no distributed client: Dask's local schedulers
        import psutil

        return int(psutil.virtual_memory().total), "this machine's memory"
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    limits = [int(w.get("memory_limit") or 0) for w in workers]
    if not limits or min(limits) == 0:  # a worker without a limit may use its machine's
        import psutil

        return int(psutil.virtual_memory().total), "this machine's memory (unlimited workers)"
    return sum(limits), f"the workers' memory limits (n = {len(limits)})"


def _available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def reference_profile(
    ddf,
    columns: Iterable[str] | None = None,
    kinds: Mapping[str, str] | None = None,
    *,
    sketch_k: int | None = None,
) -> ReferenceProfile:
    """The :class:`~opsloop.data.drift.summary.ReferenceProfile` of the given (default: all)
    columns of the Dask frame ``ddf``, equal to ``ReferenceProfile.from_frame`` of the frame
    in memory: save it once and compare in-memory windows with it. With ``sketch_k`` the
    numeric-like columns hold sketches instead (the sketch mode; such a profile is for
    ``compare``, not for saving).

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"a": [2.0, 1.0, 3.0]}), npartitions=2)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     reference_profile(ddf)["a"].sample.values.tolist()
    [1.0, 2.0, 3.0]
    """
    names = list(ddf.columns) if columns is None else list(columns)
    missing = [name for name in names if name not in ddf.columns]
    if missing:
        raise ValueError(f"columns not in the reference: {missing}")
    kinds = dict(kinds or {})
    return ReferenceProfile(
        summarize_columns_dask(
            ddf, {name: kinds.get(name) for name in names}, sketch_k=sketch_k
        ).values()
    )


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
    return summarize_columns_dask(ddf, {name: kind})[name]


def summarize_columns_dask(
    ddf, kinds: Mapping[str, str | None], *, sketch_k: int | None = None
) -> dict[str, ColumnSummary]:
    """:func:`summarize_dask` of several columns (name -> kind, ``None`` to infer it), in
    the passes over the partitions :func:`column_passes` plans (all of them in one pass
    with ``sketch_k``: numeric-like columns sketched, see the module).

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> frame = pd.DataFrame({"x": [0.5, 1.5, 2.5], "c": ["a", "b", "a"]})
    >>> with dask.config.set(scheduler="synchronous"):
    ...     s = summarize_columns_dask(dd.from_pandas(frame, npartitions=2), {"x": None, "c": None})
    >>> s["x"].kind, s["x"].sample.values.tolist(), s["c"].kind, s["c"].counts
    ('numeric', [0.5, 1.5, 2.5], 'categorical', {'a': 2, 'b': 1})
    """
    names = list(kinds)
    missing = [name for name in names if name not in ddf.columns]
    if missing:
        raise ValueError(f"columns not in the frame: {missing}")
    plan = dict(kinds)
    pending = [name for name in names if plan[name] is None]
    if pending:
        types = column_types(ddf[pending])
        for name in pending:
            logical = types[name]
            # A duration is summarised as seconds, as in memory.
            if ddf[name].dtype.kind == "m":
                logical = "float"
            plan[name] = (
                _NUMBER if logical in ("int", "float") else _KIND_OF_TYPE.get(logical, "text")
            )
    summaries: dict[str, ColumnSummary] = {}
    passes = column_passes(plan) if sketch_k is None else [names]
    for batch in passes:
        batch_plan = {name: plan[name] for name in batch}
        if sketch_k is None:
            parts = map_partitions_checked(
                ddf, _summarize_partition, batch_plan, sketch_k, columns=batch
            )
        else:
            # Sketches merge on the workers, a tree of merges: the client receives one
            # sketch per column, not one per partition and column (about 24 KB each).
            parts = [
                reduce_partitions(
                    ddf,
                    _summarize_partition,
                    _merge_partition_summaries,
                    batch_plan,
                    sketch_k,
                    columns=batch,
                )
            ]
        for name in batch:
            pieces = [part[name] for part in parts]
            if batch_plan[name] == _NUMBER:
                summaries[name] = _numeric_or_discrete(name, pieces)
            else:
                summaries[name] = merge_summaries(pieces)
    return {name: summaries[name] for name in names}


def column_passes(kinds: Mapping[str, str], per_pass: int | None = None) -> list[list[str]]:
    """The columns of ``kinds`` (name -> drift kind, or ``"number"`` for a numeric column
    typed from its values) grouped into the exact mode's passes over the partitions: at
    most ``per_pass`` (default :data:`COLUMNS_PER_PASS`) columns a pass whose partitions
    send sorted values (numeric, datetime, text, and numbers that may turn out numeric),
    and the columns that send counts (categorical, bool, discrete) with the first pass. A
    pass costs a read of every partition; counts cost the client next to no memory.

    >>> column_passes({"a": "numeric", "c": "categorical", "b": "number", "d": "discrete"}, 1)
    [['c', 'd', 'a'], ['b']]
    """
    per_pass = COLUMNS_PER_PASS if per_pass is None else per_pass
    if per_pass < 1:
        raise ValueError(f"per_pass must be at least 1, got {per_pass}")
    counted = [name for name, kind in kinds.items() if kind in COUNT_KINDS]
    sampled = [name for name, kind in kinds.items() if kind not in COUNT_KINDS]
    passes = [sampled[start : start + per_pass] for start in range(0, len(sampled), per_pass)]
    if not passes:
        return [counted] if counted else []
    passes[0] = counted + passes[0]
    return passes


def _summarize_partition(partition: pd.DataFrame, plan: dict[str, str], sketch_k) -> dict:
    return {
        name: _numeric_partition(partition, name, sketch_k)
        if kind == _NUMBER
        else _sketched(summarize(partition[name], kind, name), sketch_k)
        for name, kind in plan.items()
    }


def _merge_partition_summaries(left: dict, right: dict) -> dict:
    """Two sketch-mode partition summaries (``_summarize_partition``'s) as one: what the
    client would merge from both, merged where they are."""
    return {
        name: _merge_numeric_parts(part, right[name])
        if isinstance(part, _NumericPart)
        else merge_summaries([part, right[name]])
        for name, part in left.items()
    }


def _merge_numeric_parts(left: _NumericPart, right: _NumericPart) -> _NumericPart:
    """Two sketch-mode numeric parts as one: counts added, sketches merged, and the value
    counts added while both sides have them (a side with no values has none to count) and
    there are at most :data:`MAX_DISCRETE_LEVELS` distinct values, beyond which the column
    cannot be discrete and only the sketch is kept. :func:`_numeric_or_discrete` gives the
    same summary for the merged part as for the two."""
    a, b = left.summary, right.summary
    summary = ColumnSummary(
        a.name,
        a.kind,
        a.n_rows + b.n_rows,
        a.n_missing + b.n_missing,
        a.n_invalid + b.n_invalid,
        sample=a.sample.merge([b.sample]),
    )
    counted = [p for p in (left, right) if p.levels is not None]
    if any(p.levels is None and p.summary.sample.n > 0 for p in (left, right)) or not counted:
        return _NumericPart(summary)
    levels, where = np.unique(np.concatenate([p.levels for p in counted]), return_inverse=True)
    if levels.size > MAX_DISCRETE_LEVELS:
        return _NumericPart(summary)
    counts = np.bincount(
        where, weights=np.concatenate([p.counts for p in counted]), minlength=levels.size
    ).astype(np.int64)
    return _NumericPart(summary, levels, counts)


def _sketched(summary: ColumnSummary, sketch_k: int | None) -> ColumnSummary:
    if sketch_k is None or summary.sample is None:
        return summary
    return dataclasses.replace(summary, sample=SketchedSample.of_sorted(summary.sample, sketch_k))


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


def _numeric_partition(partition: pd.DataFrame, name: str, sketch_k) -> _NumericPart:
    summary = summarize(partition[name], "numeric", name)
    values = summary.sample.values
    if values.size == 0:
        return _NumericPart(_sketched(summary, sketch_k))
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    if starts.size > MAX_DISCRETE_LEVELS:
        return _NumericPart(_sketched(summary, sketch_k))
    counts = np.diff(np.r_[starts, values.size])
    if sketch_k is not None:  # the sketch too, in case other partitions are not discrete
        return _NumericPart(_sketched(summary, sketch_k), values[starts], counts)
    empty = SortedSample(values[:0], summary.sample.n_missing, summary.sample.n_nonfinite)
    slim = ColumnSummary(
        summary.name, summary.kind, summary.n_rows, summary.n_missing, summary.n_invalid, empty
    )
    return _NumericPart(slim, values[starts], counts)


def _numeric_or_discrete(name: str, parts: list[_NumericPart]) -> ColumnSummary:
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
    if isinstance(parts[0].summary.sample, SketchedSample):
        first, *others = [p.summary.sample for p in parts]
        sample = first.merge(others)
        return ColumnSummary(name, "numeric", n_rows, n_missing, n_invalid, sample=sample)
    sample = SortedSample(
        merge_sorted([p.values() for p in parts]),
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
