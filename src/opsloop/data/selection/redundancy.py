"""Redundancy: of two columns that say the same thing, keep one.

:class:`NumericRedundancy` compares numeric pairs by ``|Pearson r|`` (pairwise-complete rows,
as ``DataFrame.corr``; :mod:`opsloop.data.selection.correlation`), :class:`CategoricalRedundancy`
categorical pairs by Cramér's V (:mod:`opsloop.data.selection.association`).

Which one of a pair to keep: the one more related to the target (numeric columns: ``|r|``
with a numeric target, the correlation ratio eta with classes; categorical columns: Cramér's
V with classes, eta of a numeric target by level), then the better-populated one, then the
one earlier in the frame. Columns are visited best first; each one still in the funnel drops
every later column it is redundant with, so a dropped column never drops another and the
result does not depend on the order of the pairs.

>>> import numpy as np, pandas as pd
>>> from opsloop.data.selection.columns import prepare_columns
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=300)
>>> frame = pd.DataFrame({"a": x, "b": x * 2 + 0.01 * rng.normal(size=300)})
>>> frame.loc[:5, "a"] = np.nan
>>> drops = NumericRedundancy().run(prepare_columns(frame), ["a", "b"], None, None).drops
>>> [(d.column, d.redundant_with, round(d.value, 3)) for d in drops]
[('a', 'b', 1.0)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from opsloop.data.selection.association import (
    correlation_ratio,
    cramers_v,
    cramers_v_of_table,
    pairwise_contingency,
)
from opsloop.data.selection.columns import CATEGORICAL, NUMERIC, FeatureColumns
from opsloop.data.selection.correlation import (
    correlation_from_moments,
    correlation_ratio_from_moments,
    pairwise_moments,
)
from opsloop.data.selection.report import Drop
from opsloop.data.selection.steps import Step, StepResult, check_count, check_number
from opsloop.data.selection.target import Target

#: Above this many levels in all, the pairs' tables are counted one pair at a time instead of
#: as blocks of one (levels x levels) matrix product (4,096 levels: a 128 MB matrix).
MAX_JOINT_LEVELS = 4096


def keep_order(names: list[str], relation: np.ndarray | None, present: np.ndarray) -> np.ndarray:
    """Indices of ``names`` best first: higher target relation (NaN last), more present
    rows, earlier position.

    >>> keep_order(["a", "b", "c"], np.array([0.1, np.nan, 0.5]), np.array([5, 9, 5])).tolist()
    [2, 0, 1]
    """
    position = np.arange(len(names))
    if relation is None:
        return np.lexsort((position, -present))
    strength = np.where(np.isnan(relation), -1.0, relation)
    return np.lexsort((position, -present, -strength))


def resolve_pairs(
    strength: np.ndarray, threshold: float, order: np.ndarray
) -> list[tuple[int, int]]:
    """``(dropped, kept_with)`` index pairs: walk ``order`` and let each surviving column drop
    the later ones whose ``strength`` with it exceeds ``threshold`` (NaN never does).

    >>> s = np.array([[1, .99, .2], [.99, 1, .97], [.2, .97, 1]])
    >>> resolve_pairs(s, 0.95, np.array([0, 1, 2]))
    [(1, 0)]
    """
    p = strength.shape[0]
    over = np.nan_to_num(np.abs(strength), nan=0.0) > threshold
    np.fill_diagonal(over, False)
    rank = np.empty(p, dtype=np.intp)
    rank[order] = np.arange(p)
    dropped = np.zeros(p, dtype=bool)
    pairs: list[tuple[int, int]] = []
    for i in order:
        if dropped[i]:
            continue
        victims = np.flatnonzero(over[i] & ~dropped & (rank > rank[i]))
        dropped[victims] = True
        pairs.extend((int(v), int(i)) for v in victims)
    return pairs


@dataclass(frozen=True)
class NumericRedundancy(Step):
    """Of each numeric pair with ``|Pearson r| > threshold``, drop the one less related to
    the target (or less populated, or later); the report names the column it duplicated.

    >>> NumericRedundancy(threshold=0.9).describe()
    'drop one column of each numeric pair with |Pearson r| above 0.9'
    """

    threshold: float = 0.95
    name: ClassVar[str] = "numeric_redundancy"

    def check(self) -> None:
        check_number(self.name, "threshold", self.threshold, 0.0, 1.0)

    def describe(self) -> str:
        return f"drop one column of each numeric pair with |Pearson r| above {self.threshold:g}"

    def run(
        self,
        columns: FeatureColumns,
        active: list[str],
        target: Target | None,
        random_state: int | None,
    ) -> StepResult:
        names = columns.of_kind(NUMERIC, active)
        if len(names) < 2:
            return StepResult()
        arrays = [columns.values[name] for name in names]
        relation = None
        if target is not None and target.task == "classification":
            moments = pairwise_moments(arrays, target.codes, target.n_classes)
            relation = correlation_ratio_from_moments(moments)
            r = correlation_from_moments(moments)
        elif target is not None:
            r = correlation_from_moments(pairwise_moments([*arrays, target.numbers]))
            relation = np.abs(r[-1, :-1])
            r = r[:-1, :-1]
        else:
            r = correlation_from_moments(pairwise_moments(arrays))
        return pair_drops(self, names, r, "pearson_r", "Pearson r", relation, columns)


def pair_drops(step, names, strength, statistic, label, relation, columns) -> StepResult:
    """One drop per pair above ``step.threshold`` in ``strength``, keeping the column more
    related to the target, then the better populated, then the earlier (``columns`` gives
    ``n_rows`` and ``n_null``: any object with them, the Dask path's too).

    >>> import pandas as pd
    >>> from opsloop.data.selection.columns import prepare_columns
    >>> columns = prepare_columns(pd.DataFrame({"a": [1.0, None], "b": [1.0, 2.0]}))
    >>> strength = np.array([[1.0, 0.99], [0.99, 1.0]])
    >>> result = pair_drops(NumericRedundancy(), ["a", "b"], strength, "pearson_r", "r",
    ...                     None, columns)
    >>> [(d.column, d.redundant_with) for d in result.drops]
    [('a', 'b')]
    """
    present = np.array([columns.n_rows - columns.n_null[name] for name in names])
    order = keep_order(names, relation, present)
    drops = []
    for victim, kept in resolve_pairs(strength, step.threshold, order):
        value = float(strength[victim, kept])
        drops.append(
            Drop(
                names[victim],
                step.name,
                statistic,
                value,
                float(step.threshold),
                redundant_with=names[kept],
                reason=_why(names[kept], label, value, relation, victim, kept, present),
            )
        )
    return StepResult(tuple(drops))


def _why(
    kept: str,
    statistic: str,
    value: float,
    relation: np.ndarray | None,
    victim: int,
    winner: int,
    present: np.ndarray,
) -> str:
    """The sentence for the report: what the column duplicated and why the other stayed."""
    head = f"{statistic} {value:.3f} with {kept!r}"
    if relation is not None and not np.isnan(relation[winner]):
        mine = relation[victim]
        shown = "n/a" if np.isnan(mine) else f"{mine:.3f}"
        if np.isnan(mine) or relation[winner] > mine:
            return f"{head}, which relates more to the target ({relation[winner]:.3f} vs {shown})"
    if present[winner] > present[victim]:
        return f"{head}, which has more values ({present[winner]} vs {present[victim]})"
    return f"{head}, which comes first"


@dataclass(frozen=True)
class CategoricalRedundancy(Step):
    """Of each categorical pair with Cramér's V above ``threshold``, drop the one less related
    to the target (or less populated, or later).

    Columns with more than ``max_levels`` levels are not compared (their tables would be
    mostly empty cells, where chi-square says little); the report keeps them as they are.

    >>> CategoricalRedundancy().describe()
    "drop one column of each categorical pair with Cramér's V above 0.9"
    """

    threshold: float = 0.9
    max_levels: int = 100
    name: ClassVar[str] = "categorical_redundancy"

    def check(self) -> None:
        check_number(self.name, "threshold", self.threshold, 0.0, 1.0)
        check_count(self.name, "max_levels", self.max_levels, 2)

    def describe(self) -> str:
        return f"drop one column of each categorical pair with Cramér's V above {self.threshold:g}"

    def run(
        self,
        columns: FeatureColumns,
        active: list[str],
        target: Target | None,
        random_state: int | None,
    ) -> StepResult:
        names = [
            name
            for name in columns.of_kind(CATEGORICAL, active)
            if columns.levels[name] <= self.max_levels
        ]
        if len(names) < 2:
            return StepResult()
        codes = [columns.codes[name] for name in names]
        levels = [max(columns.levels[name], 1) for name in names]
        p = len(names)
        v = np.full((p, p), np.nan)
        if sum(levels) <= MAX_JOINT_LEVELS:
            counts, offsets = pairwise_contingency(codes, levels)
            for i in range(p):
                for j in range(i + 1, p):
                    table = counts[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]]
                    v[i, j] = v[j, i] = cramers_v_of_table(table)
        else:
            # The joint table of all levels would not fit in memory: count pair by pair.
            for i in range(p):
                for j in range(i + 1, p):
                    v[i, j] = v[j, i] = cramers_v(codes[i], levels[i], codes[j], levels[j])
        relation = None
        pairs = list(zip(codes, levels, strict=True))
        if target is not None and target.task == "classification":
            relation = np.array(
                [cramers_v(c, lv, target.codes, target.n_classes) for c, lv in pairs]
            )
        elif target is not None:
            relation = np.array([correlation_ratio(c, lv, target.numbers) for c, lv in pairs])
        return pair_drops(self, names, v, "cramers_v", "Cramér's V", relation, columns)
