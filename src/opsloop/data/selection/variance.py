"""Near-zero variance: drop a column whose most frequent value covers almost every row.

A column is dropped when its most frequent value covers more than ``top_share`` of its
non-missing rows *and* that value is more than ``ratio`` times as frequent as the second most
frequent one (caret's ``nearZeroVar`` frequency-ratio rule, with its 95/5 = 19 cut). The ratio
keeps a rare but real binary flag (92% zeros, 8% ones: ratio 11.5) while it drops a column that
is one value plus scattered noise. A column with a single value has ratio infinity; a column
with no values at all is dropped too (it has nothing to vary).

Counting every value of every numeric column means sorting each one. A value that covers more
than half of a column is the column's majority, which one pass finds (Boyer-Moore's vote, a
numba kernel here) and a second pass counts; so with ``top_share >= 0.5`` only the columns
whose majority passes the share are sorted, and only their remaining values at that. The
statistics equal ``Series.value_counts(normalize=True)``'s top entries; ``top_share`` is
reported exactly whenever the top value covers more than half the rows (the only case that
can decide) and left empty otherwise.

>>> import pandas as pd
>>> from opsloop.data.selection.columns import prepare_columns
>>> frame = pd.DataFrame({"flag": [0] * 95 + [1] * 5, "one": [7.0] * 100})
>>> result = NearZeroVariance().run(prepare_columns(frame), ["flag", "one"], None, None)
>>> [(d.column, d.value, d.threshold) for d in result.drops]
[('one', 1.0, 0.9)]
>>> result.measured["top_share"]["flag"]
0.95
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numba
import numpy as np

from opsloop.data.selection.columns import NUMERIC, FeatureColumns
from opsloop.data.selection.report import Drop
from opsloop.data.selection.steps import Step, StepResult, check_number
from opsloop.data.selection.target import Target


@numba.njit(cache=True)
def majority_count(values: np.ndarray) -> tuple[float, int, int]:
    """``(candidate, its count, non-NaN count)``; the candidate is the majority if any."""
    candidate = np.nan
    votes = 0
    present = 0
    for v in values:
        if v != v:
            continue
        present += 1
        if votes == 0:
            candidate = v
            votes = 1
        elif v == candidate:
            votes += 1
        else:
            votes -= 1
    count = 0
    for v in values:
        if v == candidate:
            count += 1
    return candidate, count, present


def top_two_counts(values: np.ndarray, top_share: float) -> tuple[int, int, int]:
    """``(most frequent count, second count, non-missing count)`` of a float column.

    With ``top_share >= 0.5`` the second count is only computed when the first passes the
    share (it is returned as -1 otherwise: not needed to decide).

    >>> top_two_counts(np.array([1.0, 1.0, 1.0, 2.0, np.nan]), 0.5)
    (3, 1, 4)
    """
    if top_share >= 0.5:
        candidate, count, present = majority_count(values)
        if present == 0:
            return 0, 0, 0
        if count <= top_share * present:
            return (count if 2 * count > present else -1), -1, present
        rest = values[(values != candidate) & ~np.isnan(values)]
        if rest.size == 0:
            return count, 0, present
        second = int(np.unique(rest, return_counts=True)[1].max())
        return count, second, present
    present_values = values[~np.isnan(values)]
    if present_values.size == 0:
        return 0, 0, 0
    counts = np.unique(present_values, return_counts=True)[1]
    return _top_two(counts, present_values.size)


def _top_two(counts: np.ndarray, present: int) -> tuple[int, int, int]:
    if counts.size == 0:
        return 0, 0, present
    if counts.size == 1:
        return int(counts[0]), 0, present
    top = np.partition(counts, counts.size - 2)[-2:]
    return int(top[1]), int(top[0]), present


@dataclass(frozen=True)
class NearZeroVariance(Step):
    """Drop a column whose top value covers more than ``top_share`` of its non-missing rows
    and is more than ``ratio`` times as frequent as the second (numeric and categorical).

    >>> NearZeroVariance(top_share=0.95, ratio=50).describe()
    'drop columns whose top value covers more than 95% of rows and is over 50x the second'
    """

    top_share: float = 0.9
    ratio: float = 19.0
    name: ClassVar[str] = "near_zero_variance"

    def check(self) -> None:
        check_number(self.name, "top_share", self.top_share, 0.0, 1.0)
        check_number(self.name, "ratio", self.ratio, 1.0)

    def describe(self) -> str:
        return (
            f"drop columns whose top value covers more than {self.top_share:.0%} of rows "
            f"and is over {self.ratio:g}x the second"
        )

    def run(
        self,
        columns: FeatureColumns,
        active: list[str],
        target: Target | None,
        random_state: int | None,
    ) -> StepResult:
        drops: list[Drop] = []
        shares: dict[str, float | None] = {}
        for name in active:
            if columns.kinds[name] == NUMERIC:
                top, second, present = top_two_counts(columns.values[name], self.top_share)
            else:
                codes = columns.codes[name]
                counts = np.bincount(codes[codes >= 0], minlength=columns.levels[name])
                top, second, present = _top_two(counts[counts > 0], int(counts.sum()))
            shares[name], drop = self.decide(name, top, second, present)
            if drop is not None:
                drops.append(drop)
        return StepResult(tuple(drops), {"top_share": shares})

    def decide(
        self, name: str, top: int, second: int, present: int
    ) -> tuple[float | None, Drop | None]:
        """The share reported for column ``name`` and its drop, if any, from the counts of
        its most frequent value (``top``), the second (``second``) and its non-missing
        rows (``present``).

        ``top`` is ``-1`` where it was not counted (a numeric column with no majority, see
        :func:`top_two_counts`): the share is then left empty. ``second`` may be ``-1``
        where the share alone decides.

        >>> step = NearZeroVariance()
        >>> share, drop = step.decide("flag", 97, 3, 100)
        >>> share, drop.reason
        (0.97, 'top value in 97.0% of non-missing rows, 32.3x the second (limits 90% and 19x)')
        >>> step.decide("coin", -1, -1, 100)
        (None, None)
        """
        if present == 0:
            drop = Drop(
                name,
                self.name,
                "top_share",
                None,
                float(self.top_share),
                reason="no non-missing values",
            )
            return None, drop
        share = top / present if top >= 0 else None
        if share is None or share <= self.top_share:
            return share, None
        ratio = math.inf if second == 0 else top / second
        if ratio <= self.ratio:
            return share, None
        if second == 0:
            reason = "a single value in every non-missing row"
        else:
            reason = (
                f"top value in {share:.1%} of non-missing rows, {ratio:.3g}x the second "
                f"(limits {self.top_share:.0%} and {self.ratio:g}x)"
            )
        return share, Drop(
            name, self.name, "top_share", share, float(self.top_share), reason=reason
        )
