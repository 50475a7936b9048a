"""The feature-selection funnel on a Dask frame: the steps whose statistics merge, computed
partition by partition and merged on the workers.

``FeatureFunnel(steps=...).fit(ddf, y)`` (``y`` a Dask Series partitioned like ``ddf``, such
as a column of the same frame) hands the frame to :func:`selection_statistics`: one pass
reads every partition once and returns sums that add up across partitions, merged in a
tree on the workers (:func:`~.frames.reduce_partitions`):

* row and null counts (:class:`~opsloop.data.selection.nulls.NullFraction`);
* every column's value counts, exact up to ``counted_values`` distinct values and a
  bounded summary beyond, with a second pass over the values it holds where needed
  (:class:`~opsloop.data.selection.variance.NearZeroVariance`, in :mod:`.variance`);
* the numeric columns' pairwise co-moments, standardised by one location for every
  partition (:class:`~opsloop.data.selection.correlation.PairwiseMoments`: sums, sums of
  squares and of products over pairwise-complete rows, per class too), for
  :class:`~opsloop.data.selection.redundancy.NumericRedundancy`'s Pearson r and the
  target relation (eta by class, or r with a numeric target);
* the categorical columns' counts by level and class (or count, sum and sum of squares of
  a numeric target by level) and every pair's contingency table, for
  :class:`~opsloop.data.selection.redundancy.CategoricalRedundancy`'s Cramér's V;
* :class:`~opsloop.data.selection.relevance.Relevance` with ``f_classif``,
  ``f_regression`` or ``chi2``: each is a function of those sums (the one-way ANOVA's sums
  of squares, the correlation of the mean-filled column with the target, class sums), so
  the scores are scikit-learn's on the funnel's encoding, to float rounding.

The result is the in-memory funnel's on the same rows: the same kept and dropped columns
for the same reasons, and the measured values (r, V, scores) equal to 1e-9 relative, most
to 1e-12 (the sums are taken in another order). One exception, in the Dask path's favour:
scikit-learn's F tests sum raw values, so on a column far from zero against its spread
(a datetime as seconds since 1970: 1.7e9 give or take a day) its score loses digits, and
the standardised sums here come nearer the exact value (the two differ in the fourth digit
on such a column; a verdict that turns on that digit can differ). Levels of a categorical
column are the union of the partitions' (a pandas categorical's categories, used or not, as
in memory). The target's task is the label rule's on every partition's distinct values, and a
regression target may hold what the in-memory path converts to numbers (an object column of
floats or ``Decimal``, numeric strings, booleans). Near-zero variance is the in-memory
step's on every column with at most ``counted_values`` distinct values (10,000 by default);
:mod:`.variance` says what is exact beyond that.

**Not mergeable, so refused with an error that names the step:** ``Relevance`` with mutual
information (scikit-learn's estimator reads neighbours among all rows) or a function of its
own, and :class:`~opsloop.data.selection.importance.ModelImportance` (a model fitted on the
rows). The fallback is to run them in memory on a sample, after the mergeable steps have
narrowed the columns: ``funnel.transform(ddf).sample(frac=...).compute()``. The default
funnel (``FeatureFunnel()``, no steps given) runs its other five steps on the Dask frame and
its model step in memory on the rows of the columns they keep that it reads, each partition
sent here on its own, when those fit here and each partition fits a worker
(:func:`gather_fits`): on such data it keeps what the in-memory default funnel keeps,
with the same importances. When they do not fit, its report lists the model step as not
run, with the sizes and that fallback.

>>> import dask, numpy as np, pandas as pd, dask.dataframe as dd
>>> from opsloop.data.selection import FeatureFunnel, NumericRedundancy, Relevance
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=400)
>>> frame = pd.DataFrame({"x": x, "x2": 2 * x, "noise": rng.normal(size=400),
...                       "y": (x > 0).astype(int)})
>>> ddf = dd.from_pandas(frame, npartitions=4)
>>> funnel = FeatureFunnel(steps=[NumericRedundancy(), Relevance(k=1)])
>>> with dask.config.set(scheduler="synchronous"):
...     _ = funnel.fit(ddf.drop(columns="y"), ddf["y"])
>>> funnel.report_.kept, funnel.report_["x2"].redundant_with
(['x'], 'x')
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opsloop.data.distributed.frames import byte_size, map_partitions_checked, reduce_partitions
from opsloop.data.distributed.schema import column_types
from opsloop.data.distributed.variance import (
    COUNTED_VALUES,
    ValueCounts,
    near_zero_variance,
    present_values,
)
from opsloop.data.label_task import float_task, infinite_labels, label_kind, label_numbers
from opsloop.data.selection.association import (
    contingency,
    cramers_v_of_table,
    pairwise_contingency,
)
from opsloop.data.selection.columns import (
    CATEGORICAL,
    KIND_OF_TYPE,
    NUMERIC,
    check_readable_dtype,
    check_uniform_values,
    float_values,
    is_date_text,
    prepare_columns,
)
from opsloop.data.selection.correlation import (
    CHUNK_ROWS,
    PairwiseMoments,
    correlation_from_moments,
    correlation_ratio_from_moments,
    pairwise_moments,
    rough_location,
)
from opsloop.data.selection.nulls import NullFraction
from opsloop.data.selection.redundancy import (
    MAX_JOINT_LEVELS,
    CategoricalRedundancy,
    NumericRedundancy,
    pair_drops,
)
from opsloop.data.selection.relevance import Relevance
from opsloop.data.selection.steps import Step, StepResult
from opsloop.data.selection.target import (
    INFINITE_TARGET,
    Target,
    not_numeric_target,
    prepare_target,
    regression_numbers,
)
from opsloop.data.selection.variance import NearZeroVariance

#: The target's column while it travels with the features' partitions.
_TARGET = "__opsloop_target__"
#: The relevance scores computed from merged sums.
MERGEABLE_SCORES = ("f_classif", "f_regression", "chi2")


#: Share of the memory available here, and of each worker's memory limit, that the default
#: funnel's model step may take for the gathered rows. The other half covers what the step
#: holds beside them: the partitions and their concatenation while they are joined, and the
#: step's float (or code) columns.
GATHER_MEMORY_SHARE = 0.5
#: Bytes of a numeric value in the gathered frame.
_NUMERIC_BYTES = 8


@dataclass(frozen=True)
class GatherSize:
    """The estimated bytes of the rows the model step would gather: all of them
    (``total``) and the largest partition's (``largest``), for ``n_columns`` columns and
    the target."""

    total: int
    largest: int
    n_columns: int


def gather_size(X, y, columns: list[str]) -> GatherSize:
    """The bytes the rows of the Dask frame ``X``'s ``columns`` and the Dask target ``y``
    take once gathered: 8 bytes a numeric value; for an object, string or categorical
    column and the target, the first partition's deep memory per row, scaled by the rows
    of each partition (counted on the target, the one column read for it).

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> frame = pd.DataFrame({"x": [0.5] * 100, "y": [0, 1] * 50})
    >>> ddf = dd.from_pandas(frame, npartitions=4)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     gather_size(ddf, ddf["y"], ["x"])
    GatherSize(total=1600, largest=400, n_columns=1)
    """
    lookup = {str(c): c for c in X.columns}
    chosen = [lookup[name] for name in columns]
    numeric = [c for c in chosen if pd.api.types.is_numeric_dtype(X.dtypes[c])]
    measured = [c for c in chosen if c not in numeric]
    sizes = map_partitions_checked(
        X[measured].assign(**{_TARGET: y}), _partition_bytes, _NUMERIC_BYTES * len(numeric)
    )
    return GatherSize(sum(sizes), max(sizes, default=0), len(columns))


def _partition_bytes(partition, numeric_per_row: int) -> int:
    return int(partition.memory_usage(deep=True, index=False).sum()) + numeric_per_row * len(
        partition
    )


def gather_fits(
    size: GatherSize, available: int | None = None, worker_limit: int | None = None
) -> tuple[bool, str]:
    """``(fits, sizes)``: whether the rows ``size`` estimates may be gathered here for the
    model step (all of them against :data:`GATHER_MEMORY_SHARE` of ``available`` bytes, and
    the largest partition against that share of ``worker_limit``, each worker's memory
    limit), and the sizes compared, in words. ``available`` is by default the smaller of
    this machine's available memory and Dask's memory limit for it (which reads cgroup
    limits); ``worker_limit`` the smallest limit of the distributed client's workers, when
    there is a client (no limit otherwise).

    >>> gather_fits(GatherSize(218_448, 54_612, 23), available=8 * 2**30, worker_limit=0)
    (True, 'the rows of 23 columns and the target (213.3 KiB) against 50% of 8.0 GiB available here')
    >>> fits, sizes = gather_fits(GatherSize(2**30, 600 * 2**20, 2), 8 * 2**30, worker_limit=2**30)
    >>> fits, sizes.split("; ")[1]
    (False, 'the largest partition (600.0 MiB) against 50% of 1.0 GiB, the smallest worker memory limit')
    """  # noqa: E501
    if available is None:
        available = _memory_here()
    if worker_limit is None:
        worker_limit = _smallest_worker_limit()
    fits = size.total <= GATHER_MEMORY_SHARE * available
    sizes = (
        f"the rows of {size.n_columns} columns and the target ({byte_size(size.total)}) against "
        f"{GATHER_MEMORY_SHARE:.0%} of {byte_size(available)} available here"
    )
    if worker_limit:
        fits = fits and size.largest <= GATHER_MEMORY_SHARE * worker_limit
        sizes += (
            f"; the largest partition ({byte_size(size.largest)}) against "
            f"{GATHER_MEMORY_SHARE:.0%} of {byte_size(worker_limit)}, "
            "the smallest worker memory limit"
        )
    return fits, sizes


def _memory_here() -> int:
    import psutil

    available = int(psutil.virtual_memory().available)
    try:
        from distributed.system import MEMORY_LIMIT
    except ImportError:
        return available
    return min(available, int(MEMORY_LIMIT))


def _smallest_worker_limit() -> int:
    """The smallest memory limit of the distributed client's workers; 0 when there is no
    client or no worker has a limit."""
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        return 0
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    limits = [int(w.get("memory_limit") or 0) for w in workers]
    return min((limit for limit in limits if limit > 0), default=0)


def model_step_in_memory(
    step: Step, X, y, active: list[str], task: str, random_state: int | None
) -> StepResult:
    """``step`` (a step that reads rows, such as the model step) run in memory on the rows
    of the Dask frame ``X``'s ``active`` columns and the Dask target ``y``. Each partition
    is computed on its own and sent here (no worker joins them), then they are joined in the
    frame's order: the in-memory funnel's result on the same rows.

    >>> import dask, numpy as np, pandas as pd, dask.dataframe as dd
    >>> from opsloop.data.selection import ModelImportance
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=600)
    >>> frame = pd.DataFrame({"x": x, "noise": rng.normal(size=600), "y": (x > 0).astype(int)})
    >>> ddf = dd.from_pandas(frame, npartitions=3)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     result = model_step_in_memory(
    ...         ModelImportance(), ddf, ddf["y"], ["x", "noise"], "classification", 0)
    >>> [d.column for d in result.drops]
    ['noise']
    """
    import dask
    from dask.dataframe.dispatch import concat

    lookup = {str(c): c for c in X.columns}
    frame = X[[lookup[name] for name in active]].assign(**{_TARGET: y})
    # Not frame.compute(): dask-expr joins the partitions into one on a worker first.
    parts = dask.compute(*frame.to_delayed())
    # Dask's concat, not pandas': it unions the categories each Parquet file's partition
    # knows, so a categorical column stays categorical (pandas' makes it text).
    gathered = concat(list(parts)) if parts else frame._meta
    del parts
    target = prepare_target(gathered.pop(_TARGET), len(gathered), task)
    gathered.columns = active
    return step.run(prepare_columns(gathered), active, target, random_state)


def check_mergeable(steps: list[Step]) -> None:
    """Raise ``ValueError`` naming the steps whose statistics do not merge across
    partitions (see the module), with the fallback.

    >>> from opsloop.data.selection import ModelImportance, NearZeroVariance
    >>> check_mergeable([NearZeroVariance(), ModelImportance()])
    Traceback (most recent call last):
    ...
    ValueError: on a Dask frame the funnel runs only steps whose statistics merge across partitions; model_importance fits a model on the rows; run those in memory on a sample of the columns the other steps keep: funnel.transform(ddf).sample(frac=...).compute()
    """  # noqa: E501
    refused = []
    for step in steps:
        if isinstance(
            step, NullFraction | NearZeroVariance | NumericRedundancy | CategoricalRedundancy
        ):
            continue
        if isinstance(step, Relevance):
            if callable(step.score_func):
                refused.append(f"{step.name} with a score_func of its own (its input is rows)")
            elif step.score_func != "auto" and step.score_func not in MERGEABLE_SCORES:
                refused.append(
                    f"{step.name} with {step.score_func} (scikit-learn's estimator reads "
                    f"neighbours among all rows); use one of {', '.join(MERGEABLE_SCORES)}"
                )
            continue
        if step.name == "model_importance":
            refused.append(f"{step.name} fits a model on the rows")
        else:
            refused.append(f"{step.name} (not known to merge)")
    if refused:
        raise ValueError(
            "on a Dask frame the funnel runs only steps whose statistics merge across "
            f"partitions; {'; '.join(refused)}; run those in memory on a sample of the columns "
            "the other steps keep: funnel.transform(ddf).sample(frac=...).compute()"
        )


@dataclass(frozen=True)
class _Plan:
    numeric: tuple[tuple[str, str], ...]  # (name, logical type)
    categorical: tuple[str, ...]
    text: tuple[str, ...]
    task: str | None
    classes: tuple | None
    location: tuple[np.ndarray, np.ndarray] | None  # numeric columns, then a numeric target
    max_levels: int | None  # compare categorical pairs up to this many levels; None: not
    counted: tuple[tuple[str, str, str], ...] = ()  # (name, kind, logical type) to count
    counted_values: int = COUNTED_VALUES


@dataclass
class PartitionStatistics:
    """What the mergeable steps read of some rows, in sums that add across partitions."""

    n_rows: int
    n_null: dict[str, int]
    n_infinite: dict[str, int]
    n_negative: dict[str, int]
    moments: PairwiseMoments | None
    class_totals: np.ndarray | None
    target_sums: np.ndarray  # n, sum and sum of squares of the standardised numeric target
    levels: dict[str, list] = field(default_factory=dict)
    level_tables: dict[str, np.ndarray] = field(default_factory=dict)
    pair_tables: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    over_levels: set[str] = field(default_factory=set)
    value_counts: dict[str, ValueCounts] = field(default_factory=dict)

    def merge(self, other: PartitionStatistics) -> PartitionStatistics:
        """These rows' statistics and ``other``'s as one (levels united, tables aligned)."""
        levels, where = {}, {}
        for name, mine in self.levels.items():
            theirs = other.levels[name]
            known = pd.Index(mine, dtype=object).get_indexer(pd.Index(theirs, dtype=object))
            united = mine + [v for v, at in zip(theirs, known, strict=True) if at < 0]
            levels[name] = united
            where[name] = pd.Index(united, dtype=object).get_indexer(pd.Index(theirs, dtype=object))
        tables = {}
        for name, table in self.level_tables.items():
            grown = np.zeros((len(levels[name]), table.shape[1]))
            grown[: table.shape[0]] = table
            np.add.at(grown, where[name], other.level_tables[name])
            tables[name] = grown
        over = self.over_levels | other.over_levels
        pairs = {}
        for (a, b), table in self.pair_tables.items():
            if a in over or b in over or (a, b) not in other.pair_tables:
                continue
            grown = np.zeros((len(levels[a]), len(levels[b])))
            grown[: table.shape[0], : table.shape[1]] = table
            np.add.at(grown, (where[a][:, None], where[b][None, :]), other.pair_tables[(a, b)])
            pairs[(a, b)] = grown
        return PartitionStatistics(
            self.n_rows + other.n_rows,
            _added(self.n_null, other.n_null),
            _added(self.n_infinite, other.n_infinite),
            _added(self.n_negative, other.n_negative),
            None if self.moments is None else self.moments.merge(other.moments),
            None if self.class_totals is None else self.class_totals + other.class_totals,
            self.target_sums + other.target_sums,
            levels,
            tables,
            pairs,
            over,
            {
                name: counts.merge(other.value_counts[name])
                for name, counts in self.value_counts.items()
            },
        )


def _added(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {name: a[name] + b[name] for name in a}


def _statistics_of_partition(partition: pd.DataFrame, plan: _Plan) -> PartitionStatistics:
    n = len(partition)
    n_null: dict[str, int] = {}
    n_infinite: dict[str, int] = {}
    n_negative: dict[str, int] = {}
    arrays = []
    for name, logical in plan.numeric:
        series = partition[name]
        check_uniform_values(name, series)
        values = float_values(series, logical)
        finite = np.isfinite(values)
        missing = np.isnan(values)
        n_null[name] = int(missing.sum())
        n_infinite[name] = int(n - finite.sum() - n_null[name])
        n_negative[name] = int((values[finite] < 0).sum())
        arrays.append(np.where(finite | missing, values, np.nan))
    codes = classes = None
    target_sums = np.zeros(3)
    y = None
    if plan.task == "classification":
        classes = len(plan.classes)
        codes = pd.Categorical(partition[_TARGET], categories=list(plan.classes)).codes
        codes = codes.astype(np.intp)
    elif plan.task == "regression":
        centre, scale = plan.location
        raw = regression_numbers(partition[_TARGET])
        arrays.append(raw)  # pairwise_moments standardises it with the location
        y = (raw - centre[-1]) / scale[-1]
        target_sums = np.array([y.size, y.sum(), y @ y])
    moments = None
    if arrays:
        moments = pairwise_moments(arrays, codes, classes or 0, location=plan.location)
    stats = PartitionStatistics(
        n,
        n_null,
        n_infinite,
        n_negative,
        moments,
        None if codes is None else np.bincount(codes, minlength=classes).astype(np.float64),
        target_sums,
    )
    for name in plan.text:
        stats.n_null[name] = int(partition[name].isna().sum())
    local_codes = {}
    for name in plan.categorical:
        series = partition[name]
        check_uniform_values(name, series)
        if isinstance(series.dtype, pd.CategoricalDtype):
            level_values = list(series.cat.categories)
            column = series.cat.codes.to_numpy().astype(np.intp)
        else:
            column, uniques = pd.factorize(series, use_na_sentinel=True)
            level_values = list(uniques)
        present = column >= 0
        stats.n_null[name] = int(n - present.sum())
        stats.levels[name] = level_values
        if codes is not None:
            table = contingency(column, len(level_values), codes, classes).astype(np.float64)
        else:
            table = np.zeros((len(level_values), 3))
            if plan.task == "regression":
                at, ys = column[present], y[present]
                table[:, 0] = np.bincount(at, minlength=len(level_values))
                table[:, 1] = np.bincount(at, weights=ys, minlength=len(level_values))
                table[:, 2] = np.bincount(at, weights=ys * ys, minlength=len(level_values))
        stats.level_tables[name] = table
        local_codes[name] = column
    for name, kind, logical in plan.counted:
        values = present_values(partition[name], kind, logical)
        stats.value_counts[name] = ValueCounts.of(values, plan.counted_values)
    if plan.max_levels is not None:
        compared = [c for c in plan.categorical if len(stats.levels[c]) <= plan.max_levels]
        stats.over_levels = set(plan.categorical) - set(compared)
        sizes = [max(len(stats.levels[c]), 1) for c in compared]
        joint = None
        if sum(sizes) <= MAX_JOINT_LEVELS and compared:
            joint, offsets = pairwise_contingency([local_codes[c] for c in compared], sizes)
        for i, a in enumerate(compared):
            for j in range(i + 1, len(compared)):
                b = compared[j]
                la, lb = len(stats.levels[a]), len(stats.levels[b])
                if joint is not None:
                    block = joint[offsets[i] : offsets[i] + la, offsets[j] : offsets[j] + lb]
                else:
                    block = contingency(local_codes[a], la, local_codes[b], lb)
                stats.pair_tables[(a, b)] = np.asarray(block, dtype=np.float64)
    return stats


def _merge_statistics(a: PartitionStatistics, b: PartitionStatistics) -> PartitionStatistics:
    return a.merge(b)


def _date_texts(partition: pd.DataFrame, names: list[str]) -> dict[str, bool | None]:
    # None: no values here to say; is_date_text is about every value of the column.
    return {
        name: None if partition[name].notna().sum() == 0 else is_date_text(partition[name])
        for name in names
    }


def _location_of(partition: pd.DataFrame, plan: _Plan) -> tuple[np.ndarray, np.ndarray]:
    head = partition.iloc[:CHUNK_ROWS]
    block = [float_values(head[name], logical) for name, logical in plan.numeric]
    if plan.task == "regression":
        block.append(regression_numbers(head[_TARGET]))
    matrix = np.column_stack(block) if block else np.empty((len(head), 0))
    matrix = np.where(np.isinf(matrix), np.nan, matrix)
    return rough_location(matrix)


def _target_of_partition(partition: pd.DataFrame) -> dict:
    y = partition[_TARGET]
    present = y.dropna()
    numbers = label_numbers(present) if len(present) else None
    finite = numbers[np.isfinite(numbers)] if numbers is not None else None
    # Numbers with a fractional part are a regression target whatever the other partitions
    # hold; every other partition sends its distinct values and the kind of its labels, and
    # the label rule decides on their union (it reads only the labels' type and the set of
    # distinct values, so the answer is the in-memory one).
    continuous = finite is not None and not np.array_equal(finite, np.floor(finite))
    # What a regression target may be is what the in-memory path converts to numbers
    # (object columns of floats or Decimals, numeric strings, booleans included).
    regression = regression_numbers(present) if len(present) else None
    return {
        "first": y.iloc[0] if len(y) else None,
        "not_numbers": len(present) > 0 and regression is None,
        "numbers_infinite": regression is not None and not bool(np.isfinite(regression).all()),
        "numbers_low": _finite_bound(regression, np.min),
        "numbers_high": _finite_bound(regression, np.max),
        "n": len(y),
        "missing": int(len(y) - len(present)),
        "kind": label_kind(present) if len(present) else None,
        "infinite": numbers is not None and len(finite) < len(numbers),
        "continuous": continuous,
        "uniques": None if continuous else pd.unique(present.to_numpy()),
    }


def _auto_task(parts: list[dict], dtype: object, continuous: bool) -> str:
    """The label rule (opsloop.data.label_task) over every partition: the type is the
    frame's (for an object column, the partitions' kinds merged as the in-memory column's
    would be) and whole-valued floats count their distinct values over the union."""
    if isinstance(dtype, pd.CategoricalDtype) or getattr(dtype, "kind", "O") != "O":
        kind = label_kind(pd.Series([], dtype=dtype))
    else:
        kinds = {p["kind"] for p in parts if p["kind"] is not None}
        kind = (
            "classes"
            if "classes" in kinds or not kinds
            else ("floats" if "floats" in kinds else "integers")
        )
    if kind != "floats":
        return "classification"
    if any(p["infinite"] for p in parts):
        raise infinite_labels("y")
    if continuous:
        return "regression"
    seen = [p["uniques"] for p in parts if p["uniques"] is not None and len(p["uniques"])]
    return float_task(np.concatenate(seen), "y") if seen else "classification"


def _finite_bound(numbers: np.ndarray | None, bound) -> float | None:
    finite = None if numbers is None else numbers[np.isfinite(numbers)]
    return None if finite is None or not len(finite) else float(bound(finite))


def _target(frame, name: str | None, task: str) -> Target:
    """The target's task and classes over every partition, with the in-memory path's
    checks and messages (missing values, a constant or non-numeric target)."""
    parts = map_partitions_checked(frame, _target_of_partition, columns=[_TARGET])
    n = sum(p["n"] for p in parts)
    missing = sum(p["missing"] for p in parts)
    if n and missing == n:
        raise ValueError("y has no values: every value is missing")
    if missing:
        raise ValueError(
            f"y has {missing} missing value(s) of {n}; drop those rows (or fill the target) first"
        )
    continuous = any(p["continuous"] for p in parts)
    if task == "auto":
        task = _auto_task(parts, frame.dtypes[_TARGET], continuous)
    if task == "classification" and continuous:
        raise ValueError(
            "task='classification' with a continuous y: on a Dask frame a class per distinct "
            "number is refused; bin y first or use task='regression'"
        )
    classes = None
    if task == "classification":
        seen = [p["uniques"] for p in parts if p["uniques"] is not None and len(p["uniques"])]
        classes = pd.factorize(np.concatenate(seen), sort=True)[1] if seen else []
        distinct = len(classes)
        shown = classes[0] if distinct else "none"
    elif any(p["not_numbers"] for p in parts):
        # In memory the constant check comes first; labels that are not numbers are never
        # continuous, so every partition sent its distinct values.
        seen = [p["uniques"] for p in parts if p["uniques"] is not None and len(p["uniques"])]
        distinct = len(pd.unique(np.concatenate(seen))) if seen else 0
        shown = seen[0][0] if seen else "none"
    else:
        lows = [p["numbers_low"] for p in parts if p["numbers_low"] is not None]
        highs = [p["numbers_high"] for p in parts if p["numbers_high"] is not None]
        distinct = 2 if lows and min(lows) != max(highs) else 1 if lows else 0
        # The value as given (the in-memory message shows it so): 7, not 7.0.
        seen = [p["uniques"] for p in parts if p["uniques"] is not None and len(p["uniques"])]
        shown = seen[0][0] if seen else min(lows) if lows else "none"
        if any(p["numbers_infinite"] for p in parts):
            # In memory a NaN or infinite number is refused unless the labels themselves
            # are all one; labels that are not continuous were all sent.
            distinct = 2 if continuous else len(pd.unique(np.concatenate(seen))) if seen else 0
    if distinct < 2:
        raise ValueError(
            f"y is constant (every value is {shown}): no step can measure relevance to it"
        )
    if task == "classification":
        labels = pd.Index(classes).tolist()
        return Target(name, task, np.empty(0), codes=None, classes=labels)
    if any(p["not_numbers"] for p in parts):
        raise not_numeric_target(next(p["first"] for p in parts if p["n"]))
    if any(p["numbers_infinite"] for p in parts):
        raise ValueError(INFINITE_TARGET)
    return Target(name, task, np.empty(0))


@dataclass
class DaskSelection:
    """The merged statistics of a Dask frame and the steps run on them: what
    ``FeatureFunnel`` needs in place of its prepared columns (``n_rows``, ``names``,
    ``kinds``, ``n_null``, ``levels``) and :meth:`run_step`."""

    n_rows: int
    names: list[str]
    kinds: dict[str, str]
    n_null: dict[str, int]
    levels: dict[str, int]
    numeric: list[str]
    statistics: PartitionStatistics
    target: Target | None
    location: tuple[np.ndarray, np.ndarray] | None  # standardising the numeric columns
    logical: dict[str, str] = field(default_factory=dict)
    frame: object = None  # the Dask frame, for counting held values again

    def run_step(self, step: Step, active: list[str], random_state: int | None) -> StepResult:
        """The step's decision on ``active`` from the merged statistics."""
        if isinstance(step, NullFraction):
            return step.run(self, active, self.target, random_state)
        if isinstance(step, NearZeroVariance):
            counted = self.statistics.value_counts
            return near_zero_variance(step, active, self.kinds, self.logical, counted, self.frame)
        if isinstance(step, NumericRedundancy):
            return self._numeric_redundancy(step, active)
        if isinstance(step, CategoricalRedundancy):
            return self._categorical_redundancy(step, active)
        if isinstance(step, Relevance):
            return self._relevance(step, active)
        check_mergeable([step])
        raise AssertionError("unreachable: check_mergeable refuses every other step")

    def _positions(self, names: list[str]) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.numeric)}
        return np.array([index[name] for name in names], dtype=np.intp)

    def _numeric_redundancy(self, step: NumericRedundancy, active: list[str]) -> StepResult:
        names = [n for n in active if self.kinds[n] == NUMERIC]
        if len(names) < 2:
            return StepResult()
        moments = self.statistics.moments
        at = self._positions(names)
        r_all = correlation_from_moments(moments)
        r = r_all[np.ix_(at, at)]
        relation = None
        if self.target is not None and self.target.task == "classification":
            relation = correlation_ratio_from_moments(moments)[at]
        elif self.target is not None:
            relation = np.abs(r_all[-1, at])
        return pair_drops(step, names, r, "pearson_r", "Pearson r", relation, self)

    def _categorical_redundancy(self, step: CategoricalRedundancy, active: list[str]) -> StepResult:
        stats = self.statistics
        names = [
            n
            for n in active
            if self.kinds[n] == CATEGORICAL
            and self.levels[n] <= step.max_levels
            and n not in stats.over_levels
        ]
        if len(names) < 2:
            return StepResult()
        p = len(names)
        v = np.full((p, p), np.nan)
        for i in range(p):
            for j in range(i + 1, p):
                a, b = names[i], names[j]
                table = stats.pair_tables.get((a, b))
                if table is None:
                    table = stats.pair_tables[(b, a)].T
                v[i, j] = v[j, i] = cramers_v_of_table(table)
        relation = None
        if self.target is not None and self.target.task == "classification":
            relation = np.array([cramers_v_of_table(stats.level_tables[n]) for n in names])
        elif self.target is not None:
            relation = np.array([_eta_of_levels(stats.level_tables[n]) for n in names])
        return pair_drops(step, names, v, "cramers_v", "Cramér's V", relation, self)

    def _relevance(self, step: Relevance, active: list[str]) -> StepResult:
        if self.target is None:
            raise ValueError(f"{step.name} needs a target: pass y to fit")
        function_name = step.function_for(self.target.task)
        names = [n for n in active if self.kinds[n] in (NUMERIC, CATEGORICAL)]
        numeric = [n for n in names if self.kinds[n] == NUMERIC]
        if function_name == "chi2":
            negative = [n for n in numeric if self.statistics.n_negative[n]]
            if negative:
                raise ValueError(
                    f"{step.name}: chi2 needs non-negative values; columns {negative} "
                    "have negative ones (use f_classif or mutual_info_classif)"
                )
        scores = np.full(len(names), np.nan)
        if numeric:
            found = self._numeric_scores(function_name, numeric)
            for name, score in zip(numeric, found, strict=True):
                scores[names.index(name)] = score
        for i, name in enumerate(names):
            if self.kinds[name] == CATEGORICAL:
                level_scores = self._level_scores(function_name, name)
                if not np.isnan(level_scores).all():
                    scores[i] = np.nanmax(level_scores)
        return step.decide(names, scores, function_name)

    def _numeric_scores(self, function_name: str, names: list[str]) -> np.ndarray:
        """Scores of the mean-filled numeric columns, from sums in standardised units (the
        F tests are free of shift and scale; chi2 goes back to the columns' units)."""
        m = self.statistics.moments
        at = self._positions(names)
        n = float(self.n_rows)
        present = m.counts[at, at]
        sums = m.sums[at, at]
        squares = m.squares[at, at]
        # As in memory: a column with no values is filled with 0 (in its own units).
        empty_fill = -self.location[0][at] / self.location[1][at]
        mean = np.where(present > 0, sums / np.where(present > 0, present, 1), empty_fill)
        missing = n - present
        total_sq = squares + missing * mean**2
        total = sums + missing * mean
        if function_name == "f_regression":
            t = m.gram.shape[0] - 1
            y_total = m.sums[t, t]
            cross = m.gram[at, t] + mean * (y_total - m.sums[t, at])
            y_norm_sq = m.squares[t, t] - y_total**2 / n
            x_norm_sq = total_sq - n * mean**2
            return _f_regression(cross - mean * y_total, x_norm_sq, y_norm_sq, n)
        class_n = self.statistics.class_totals[:, None]
        class_sums = m.class_sums[:, at] + mean * (class_n - m.class_counts[:, at])
        if function_name == "f_classif":
            return _f_classif(total_sq, total, class_sums, class_n, n)
        # chi2 is not shift- or scale-free: back to the columns' own units.
        centre, scale = self.location[0][at], self.location[1][at]
        observed = class_sums * scale + class_n * centre
        return _chi2(observed, total * scale + n * centre, class_n[:, 0] / n)

    def _level_scores(self, function_name: str, name: str) -> np.ndarray:
        table = self.statistics.level_tables[name]
        n = float(self.n_rows)
        if function_name == "f_regression":
            counts, y_sums = table[:, 0], table[:, 1]
            _, y_total, y_squares = self.statistics.target_sums
            return _f_regression(
                y_sums - counts / n * y_total,
                counts - n * (counts / n) ** 2,
                y_squares - y_total**2 / n,
                n,
            )
        counts = table.sum(axis=1)
        class_n = self.statistics.class_totals[:, None]
        if function_name == "f_classif":
            return _f_classif(counts, counts, table.T, class_n, n)
        return _chi2(table.T, counts, class_n[:, 0] / n)


def _f_classif(squares, total, class_sums, class_n, n):
    """scikit-learn's one-way ANOVA F from the sums it uses (its formula, term by term)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        square_of_sums = total**2
        sstot = squares - square_of_sums / n
        ssbn = (class_sums**2 / class_n).sum(axis=0) - square_of_sums / n
        sswn = sstot - ssbn
        k = class_n.shape[0]
        return (ssbn / (k - 1)) / (sswn / (n - k))


def _f_regression(cross, x_norm_sq, y_norm_sq, n):
    """scikit-learn's ``f_regression`` (centred, ``force_finite``) from the centred cross
    product and the squared norms."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = cross / np.sqrt(x_norm_sq) / np.sqrt(y_norm_sq)
        r = np.where(np.isnan(r), 0.0, r)
        r2 = r**2
        f = r2 / (1 - r2) * (n - 2)
    f = np.where(np.isinf(f), np.finfo(np.float64).max, f)
    return np.where(np.isnan(f), 0.0, f)


def _chi2(observed, feature_total, class_prob):
    """scikit-learn's ``chi2`` from class sums (K x p), column sums and class shares."""
    expected = np.outer(class_prob, feature_total)
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((observed - expected) ** 2 / expected).sum(axis=0)


def _eta_of_levels(table: np.ndarray) -> float:
    """``correlation_ratio`` from a level's count, sum and sum of squares of the target."""
    counts, sums, squares = table[:, 0], table[:, 1], table[:, 2]
    n = counts.sum()
    if n < 2:
        return float("nan")
    mean = sums.sum() / n
    total = squares.sum() - n * mean**2
    if total <= 1e-12 * squares.sum():
        return float("nan")
    filled = counts > 0
    between = ((sums[filled] - counts[filled] * mean) ** 2 / counts[filled]).sum()
    return float(np.sqrt(min(1.0, max(0.0, between / total))))


def selection_statistics(
    ddf, y, steps: list[Step], task: str = "auto", counted_values: int = COUNTED_VALUES
) -> DaskSelection:
    """The merged statistics of the Dask frame ``ddf`` (and target ``y``, a Dask Series
    partitioned like it, or ``None``) that ``steps`` read (see the module).

    With a :class:`~opsloop.data.selection.variance.NearZeroVariance` step, every column's
    values are counted, exactly up to ``counted_values`` distinct values a column
    (:mod:`.variance` says what happens beyond).

    >>> import dask, pandas as pd, dask.dataframe as dd
    >>> frame = pd.DataFrame({"a": [1.0, None, 3.0, 4.0], "c": ["u", "v", "u", None]})
    >>> with dask.config.set(scheduler="synchronous"):
    ...     s = selection_statistics(dd.from_pandas(frame, npartitions=2), None, [])
    >>> s.n_rows, s.kinds, s.n_null, s.levels
    (4, {'a': 'numeric', 'c': 'categorical'}, {'a': 1, 'c': 1}, {'c': 2})
    """
    check_mergeable(steps)
    names = [str(c) for c in ddf.columns]
    if list(ddf.columns) != names:
        ddf = ddf.rename(columns=dict(zip(ddf.columns, names, strict=True)))
    if _TARGET in names:
        raise ValueError(f"X has a column named {_TARGET!r}, which this path reserves")
    for name in names:
        check_readable_dtype(name, ddf.dtypes[name])
    logical = column_types(ddf)
    texts = [n for n in names if logical[n] in ("category", "string")]
    if texts:
        flags = map_partitions_checked(ddf, _date_texts, texts, columns=texts)
        for name in texts:
            said = [f[name] for f in flags if f[name] is not None]
            if said and all(said):
                logical[name] = "datetime"
    kinds = {name: KIND_OF_TYPE[logical[name]] for name in names}
    frame = ddf
    target = None
    if y is not None:
        if not hasattr(y, "npartitions"):
            raise TypeError(
                f"with a Dask frame X, y must be a Dask Series partitioned like X (a column "
                f"of the same frame), got {type(y).__name__}"
            )
        try:
            frame = ddf.assign(**{_TARGET: y})
        except (ValueError, NotImplementedError) as error:
            raise ValueError(
                f"y must be partitioned like X (a column of the same frame): {error}"
            ) from error
        target = _target(frame, None if y.name is None else str(y.name), task)
    numeric = [(n, logical[n]) for n in names if kinds[n] == NUMERIC]
    redundancy = [s for s in steps if isinstance(s, CategoricalRedundancy)]
    if (
        isinstance(counted_values, bool)
        or not isinstance(counted_values, int)
        or counted_values < 1
    ):
        raise ValueError(f"counted_values must be an integer >= 1, got {counted_values!r}")
    counted = ()
    if any(isinstance(s, NearZeroVariance) for s in steps):
        counted = tuple((n, kinds[n], logical[n]) for n in names)
    plan = _Plan(
        tuple(numeric),
        tuple(n for n in names if kinds[n] == CATEGORICAL),
        tuple(n for n in names if kinds[n] not in (NUMERIC, CATEGORICAL)),
        None if target is None else target.task,
        None if target is None or target.classes is None else tuple(target.classes),
        None,
        redundancy[0].max_levels if redundancy else None,
        counted,
        counted_values,
    )
    used = [*names, _TARGET] if target is not None else names
    location = None
    if numeric or (target is not None and target.task == "regression"):
        (location,) = map_partitions_checked(frame.partitions[0], _location_of, plan, columns=used)
        plan = dataclasses.replace(plan, location=location)
    stats = reduce_partitions(
        frame, _statistics_of_partition, _merge_statistics, plan, columns=used
    )
    if stats.n_rows == 0:
        raise ValueError(
            f"X has no rows: found 0 sample(s) (shape=(0, {len(names)})) while a minimum of 1 "
            "is required."
        )
    for name, count in stats.n_infinite.items():
        if count:
            raise ValueError(
                f"column {name!r} has {count} infinite values; replace them with a number or "
                "NaN before selection"
            )
    return DaskSelection(
        stats.n_rows,
        names,
        kinds,
        dict(stats.n_null),
        {name: len(stats.levels[name]) for name in plan.categorical},
        [name for name, _ in numeric],
        stats,
        target,
        location,
        {name: str(logical[name]) for name in names},
        ddf,
    )
