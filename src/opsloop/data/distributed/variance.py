"""The near-zero-variance step on a Dask frame: value counts per partition, merged on the
workers with bounded memory, and the in-memory step's decision on them.

:class:`~opsloop.data.selection.variance.NearZeroVariance` drops a column whose most
frequent value covers more than ``top_share`` of its non-missing rows and is more than
``ratio`` times as frequent as the second. Both need the counts of the two most frequent
values, over all partitions. Each partition counts its values (numbers as float64, as the
in-memory step reads them: bool as 0/1, datetimes as seconds; labels as they are; missing
values left out), and the counts are added up in the funnel's tree reduction
(:func:`~.frames.reduce_partitions`), one :class:`ValueCounts` per column.

**Bounded memory.** A column with at most ``capacity`` distinct values (default
:data:`COUNTED_VALUES`) is counted exactly, and the step's decision, share and reason are
the in-memory step's. Beyond that the counts become a Misra-Gries summary: whenever more than
``capacity`` values are held, the ``capacity + 1``-th largest count is taken off every count
and the values left at zero are forgotten. The summary keeps every value whose count can be
more than ``error`` (the sum of what was taken off; each forgotten value occurred at most
``error`` times), so it holds the column's top value whenever that value is frequent. A
second pass counts the values it holds exactly, and the decision is then made from exact
counts wherever they decide:

* a numeric column with no value able to cover half its rows (every value rarer than
  ``error`` + its summary count, the case of a continuous column) is kept with no share
  reported, as in memory (the in-memory step counts a numeric column's top value only when
  it is the majority), without the second pass;
* a top value counted exactly and more frequent than any forgotten value gives the exact
  share; a share at or below ``top_share`` keeps the column (a column whose values are
  mostly distinct is never near-zero-variance, whatever its frequency ratio);
* the second most frequent value is exact when some held value occurs at least as often as
  any forgotten value could; the decision, share and reason are then the in-memory step's.
  Otherwise the second count is at most ``error``, so the ratio is at least
  ``top / error``: above ``ratio`` the column is dropped and its reason gives that lower
  bound ("at least 25x the second"); at or below, a held second count that already keeps
  the ratio under ``ratio`` keeps the column, and anything else raises ``ValueError``
  naming the column and ``capacity``.

What differs from memory, and only on a column with more than ``capacity`` distinct
values: a label column (or any column with ``top_share`` below one half) whose top value is
not told apart from the forgotten ones is kept with its share left empty where the
in-memory report gives it (it cannot pass ``top_share``: ``error`` bounds it), and a
dropped column's reason can give the ratio as a lower bound. The drop itself follows the
in-memory rule. With ``top_share >= 0.5`` a top value that passes the share holds more
than half the rows, and the ratio stays undecided only when ``capacity`` is below
``ratio * (1 - top_share) / top_share`` (2.1 with the defaults).

>>> import dask, numpy as np, pandas as pd, dask.dataframe as dd
>>> from opsloop.data.selection import FeatureFunnel, NearZeroVariance
>>> frame = pd.DataFrame({"flag": [0] * 97 + [1] * 3, "x": np.arange(100.0)})
>>> funnel = FeatureFunnel(steps=[NearZeroVariance()])
>>> with dask.config.set(scheduler="synchronous"):
...     _ = funnel.fit(dd.from_pandas(frame, npartitions=3))
>>> funnel.report_["flag"].reason, funnel.report_.kept
('top value in 97.0% of non-missing rows, 32.3x the second (limits 90% and 19x)', ['x'])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from opsloop.data.distributed.frames import reduce_partitions
from opsloop.data.selection.columns import NUMERIC, check_uniform_values, float_values
from opsloop.data.selection.report import Drop
from opsloop.data.selection.steps import StepResult
from opsloop.data.selection.variance import NearZeroVariance, _top_two

#: Distinct values a column may have and still be counted exactly (per column, in every
#: partition's and every merge's summary).
COUNTED_VALUES = 10_000


@dataclass
class ValueCounts:
    """The counts of a column's non-missing values over some rows: exact while ``error``
    is 0, else a Misra-Gries summary (each held count is at most ``error`` below the true
    one; a value not held occurs at most ``error`` times).

    >>> a = ValueCounts.of(np.array([1.0, 1.0, 2.0]), capacity=2)
    >>> b = ValueCounts.of(np.array([3.0, 1.0]), capacity=2)
    >>> merged = a.merge(b)
    >>> merged.keys.tolist(), merged.counts.tolist(), merged.present, merged.error
    ([1.0], [2], 5, 1)
    """

    keys: np.ndarray  # float64 for numeric columns, object for labels
    counts: np.ndarray  # int64, one per key
    present: int
    error: int
    capacity: int

    @classmethod
    def of(cls, values: np.ndarray, capacity: int = COUNTED_VALUES) -> ValueCounts:
        """The counts of ``values`` (missing values already left out).

        >>> ValueCounts.of(np.array(["a", "b", "a"], dtype=object)).counts.tolist()
        [2, 1]
        """
        codes, keys = pd.factorize(values)
        counts = np.bincount(codes, minlength=len(keys)).astype(np.int64)
        return cls(np.asarray(keys), counts, len(values), 0, capacity).truncated()

    def truncated(self) -> ValueCounts:
        """These counts with at most ``capacity`` values held (see the module)."""
        extra = self.counts.size - self.capacity
        if extra <= 0:
            return self
        cut = int(np.partition(self.counts, extra - 1)[extra - 1])
        held = self.counts > cut
        return ValueCounts(
            self.keys[held], self.counts[held] - cut, self.present, self.error + cut, self.capacity
        )

    def merge(self, other: ValueCounts) -> ValueCounts:
        """The counts over these rows and ``other``'s."""
        codes, keys = pd.factorize(np.concatenate([self.keys, other.keys]))
        weights = np.concatenate([self.counts, other.counts]).astype(np.float64)
        # float64 sums of whole numbers are exact below 2**53 rows.
        counts = np.bincount(codes, weights=weights, minlength=len(keys)).astype(np.int64)
        return ValueCounts(
            np.asarray(keys),
            counts,
            self.present + other.present,
            self.error + other.error,
            self.capacity,
        ).truncated()


def present_values(series: pd.Series, kind: str, logical: str) -> np.ndarray:
    """The non-missing values of ``series`` as the near-zero-variance step counts them:
    float64 for a numeric column (``-0.0`` as ``0.0``), objects for labels.

    >>> present_values(pd.Series([True, None, False], dtype="boolean"), "numeric", "bool")
    array([1., 0.])
    """
    check_uniform_values(str(series.name), series)
    if kind == NUMERIC:
        values = float_values(series, logical)
        return values[~np.isnan(values)] + 0.0
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        return np.asarray(series.cat.categories, dtype=object)[codes[codes >= 0]]
    return np.asarray(series[series.notna()], dtype=object)


def _held_counts(partition: pd.DataFrame, plan: tuple) -> dict[str, np.ndarray]:
    found = {}
    for name, kind, logical, keys in plan:
        values = present_values(partition[name], kind, logical)
        at = pd.Index(keys).get_indexer(values)
        found[name] = np.bincount(at[at >= 0], minlength=len(keys)).astype(np.int64)
    return found


def _added(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: a[name] + b[name] for name in a}


def exact_held_counts(ddf, plan: list[tuple[str, str, str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The exact counts of the held values ``keys`` of each column in ``plan`` (entries
    ``(name, kind, logical type, keys)``), over every partition of ``ddf``, merged on the
    workers.

    >>> import dask, dask.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({"c": ["a", "b", "a", None]}), npartitions=2)
    >>> keys = np.array(["a", "z"], dtype=object)
    >>> with dask.config.set(scheduler="synchronous"):
    ...     exact_held_counts(ddf, [("c", "categorical", "category", keys)])["c"].tolist()
    [2, 0]
    """
    names = [entry[0] for entry in plan]
    return reduce_partitions(ddf, _held_counts, _added, tuple(plan), columns=names)


def near_zero_variance(
    step: NearZeroVariance,
    active: list[str],
    kinds: dict[str, str],
    logical: dict[str, str],
    counted: dict[str, ValueCounts],
    ddf,
) -> StepResult:
    """The step's decision on ``active`` from the merged ``counted`` values, counting the
    held values of ``ddf`` again where the summaries are not exact (see the module)."""
    # The in-memory step counts a numeric column's top value only when it is the majority
    # (with top_share >= 0.5); a label column's always.
    majority_only = {n: kinds[n] == NUMERIC and step.top_share >= 0.5 for n in active}
    recount = []
    for name in active:
        summary = counted[name]
        if summary.error == 0 or not summary.keys.size:
            continue
        top_bound = int(summary.counts.max()) + summary.error
        if majority_only[name] and 2 * top_bound <= summary.present:
            continue
        recount.append((name, kinds[name], logical[name], summary.keys))
    exact = exact_held_counts(ddf, recount) if recount else {}
    drops: list[Drop] = []
    shares: dict[str, float | None] = {}
    for name in active:
        summary = counted[name]
        if summary.error == 0:
            top, second, present = _top_two(summary.counts, summary.present)
            if majority_only[name] and top <= step.top_share * present:
                # What top_two_counts returns: the top count only for a majority, no second.
                top, second = (top if 2 * top > present else -1), -1
            shares[name], drop = step.decide(name, top, second, present)
        else:
            held = exact.get(name, np.zeros(0, dtype=np.int64))
            shares[name], drop = _bounded_decision(step, name, summary, held, majority_only[name])
        if drop is not None:
            drops.append(drop)
    return StepResult(tuple(drops), {"top_share": shares})


def _bounded_decision(
    step: NearZeroVariance, name: str, summary: ValueCounts, held: np.ndarray, majority_only: bool
) -> tuple[float | None, Drop | None]:
    present = summary.present
    # The most any value that is not held can occur.
    forgotten = min(summary.error, present - int(held.sum()))
    order = np.sort(held)[::-1]
    top = int(order[0]) if order.size else 0
    if top < forgotten:
        # No held value is known to be the most frequent; every value occurs at most
        # `forgotten` times.
        if majority_only and 2 * forgotten <= present:
            return step.decide(name, -1, -1, present)
        if forgotten <= step.top_share * present:
            return None, None
        raise _undecided(step, name, summary, "the top value's share")
    if majority_only and 2 * top <= present:
        return step.decide(name, -1, -1, present)
    # The in-memory step's own comparisons: top_two_counts' for a numeric column, the
    # share's for a label column (they can differ in the last bit).
    if (top <= step.top_share * present) if majority_only else (top / present <= step.top_share):
        return step.decide(name, top, -1, present)
    second = int(order[1]) if order.size > 1 else 0
    if second >= forgotten:
        return step.decide(name, top, second, present)
    share = top / present
    if top > step.ratio * forgotten:
        reason = (
            f"top value in {share:.1%} of non-missing rows, at least {top / forgotten:.3g}x the "
            f"second (limits {step.top_share:.0%} and {step.ratio:g}x; the column has more "
            f"than {summary.capacity} distinct values, so the second is known to be at most "
            f"{forgotten})"
        )
        return share, Drop(
            name, step.name, "top_share", share, float(step.top_share), reason=reason
        )
    if second > 0 and top <= step.ratio * second:
        return share, None
    raise _undecided(step, name, summary, "the ratio of the top two counts")


def _undecided(step: NearZeroVariance, name: str, summary: ValueCounts, what: str) -> ValueError:
    return ValueError(
        f"{step.name}: column {name!r} has more than {summary.capacity} distinct values and "
        f"{what} is not decided by counts held within that many values (top_share="
        f"{step.top_share:g}, ratio={step.ratio:g}); raise the capacity "
        "(selection_statistics(..., counted_values=...)) or run this step in memory"
    )
