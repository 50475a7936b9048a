"""Two models compared slice by slice: which slices got significantly better or worse.

Both models predict the same rows, so the comparison is paired: per slice, ``fixed`` counts
rows the first model got wrong and the second right, ``broken`` the reverse. The test is
McNemar's exact test, a two-sided binomial test of ``fixed`` against ``fixed + broken`` at
1/2 (what statsmodels' ``mcnemar(table, exact=True)`` computes), vectorised over every slice
through ``scipy.stats.binom.cdf``. Many slices mean many tests, so the verdict uses p-values
adjusted by Benjamini-Hochberg (``scipy.stats.false_discovery_control``) across all the rows.

>>> result = compare_models([1] * 8, [0] * 8, [1] * 8, {"g": ["a"] * 8}, min_size=1)
>>> row = result.rows[1]
>>> row.value, row.fixed, row.broken, round(row.p_value, 4), row.verdict
('a', 8, 0, 0.0078, 'better')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from opsloop.analysis.labels import as_labels
from opsloop.analysis.tags import Grouping, tag_groupings

#: The tag and value names of the row that covers all the data.
ALL = "(all)"


@dataclass(frozen=True)
class SliceChange:
    """One slice under both models: errors before and after, the paired counts and the test.

    >>> compare_models([1, 1], [0, 1], [1, 1], {"g": ["a", "a"]}).rows[0].errors_before
    1
    """

    tag: str
    value: str
    n: int
    errors_before: int
    errors_after: int
    error_rate_before: float
    error_rate_after: float
    fixed: int
    broken: int
    p_value: float
    p_adjusted: float
    verdict: str
    small: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values.

        >>> compare_models([1], [1], [1], {"g": ["a"]}).rows[0].to_dict()["verdict"]
        'no significant change'
        """
        return asdict(self)


@dataclass(frozen=True)
class ModelComparison:
    """Slice-by-slice comparison of a model ("before") and its successor ("after").

    >>> result = compare_models([1, 0], [1, 1], [1, 0], {"g": ["a", "b"]})
    >>> [r.value for r in result.better()]
    []
    """

    rows: tuple[SliceChange, ...]
    alpha: float
    min_size: int

    def better(self) -> tuple[SliceChange, ...]:
        """Slices whose errors fell significantly.

        >>> compare_models([1] * 9, [0] * 9, [1] * 9, {"g": ["a"] * 9}).better()[0].tag
        '(all)'
        """
        return tuple(row for row in self.rows if row.verdict == "better")

    def worse(self) -> tuple[SliceChange, ...]:
        """Slices whose errors rose significantly.

        >>> compare_models([1] * 9, [1] * 9, [0] * 9, {"g": ["a"] * 9}).worse()[1].value
        'a'
        """
        return tuple(row for row in self.rows if row.verdict == "worse")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values, rows as a list of dicts.

        >>> compare_models([1], [1], [1], {"g": ["a"]}).to_dict()["alpha"]
        0.05
        """
        return {
            "alpha": float(self.alpha),
            "min_size": int(self.min_size),
            "rows": [row.to_dict() for row in self.rows],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per slice.

        >>> compare_models([1], [1], [1], {"g": ["a"]}).to_frame().shape
        (2, 13)
        """
        columns = list(SliceChange.__dataclass_fields__)
        return pd.DataFrame([row.to_dict() for row in self.rows], columns=columns)


def compare_models(
    y_true: Any,
    y_pred_before: Any,
    y_pred_after: Any,
    tags: Any,
    *,
    intersections: bool | Sequence[tuple[str, str]] = False,
    bins: int = 5,
    alpha: float = 0.05,
    min_size: int = 30,
) -> ModelComparison:
    """Compare two models' predictions of the same rows on all the data and on every slice.

    A slice is ``"better"`` (``"worse"``) when the second model has fewer (more) errors and
    the Benjamini-Hochberg adjusted McNemar p-value is below ``alpha``.

    >>> result = compare_models([0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 1, 1], {"g": list("aabb")})
    >>> [(r.value, r.fixed, r.broken) for r in result.rows]
    [('(all)', 2, 0), ('a', 2, 0), ('b', 0, 0)]
    """
    truth = as_labels(y_true, "y_true")
    before = as_labels(y_pred_before, "y_pred_before", len(truth))
    after = as_labels(y_pred_after, "y_pred_after", len(truth))
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    if isinstance(min_size, bool) or not isinstance(min_size, int | np.integer) or min_size < 1:
        raise ValueError(f"min_size must be an integer >= 1, got {min_size!r}")
    wrong_before = before != truth
    wrong_after = after != truth
    everything = Grouping(ALL, np.zeros(len(truth), dtype=np.int64), np.array([ALL], dtype=object))
    groupings = [
        everything,
        *tag_groupings(tags, len(truth), bins=bins, intersections=intersections),
    ]
    tags_, values, n, e_before, e_after, fixed, broken = ([] for _ in range(7))
    for grouping in groupings:
        tags_.extend([grouping.tag] * len(grouping.labels))
        values.extend(str(label) for label in grouping.labels)
        n.append(grouping.counts())
        e_before.append(grouping.counts(wrong_before))
        e_after.append(grouping.counts(wrong_after))
        fixed.append(grouping.counts(wrong_before & ~wrong_after))
        broken.append(grouping.counts(~wrong_before & wrong_after))
    n, e_before, e_after, fixed, broken = (
        np.concatenate(a) for a in (n, e_before, e_after, fixed, broken)
    )
    discordant = fixed + broken
    p_value = np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(fixed, broken), discordant, 0.5))
    p_value = np.where(discordant == 0, 1.0, p_value)
    p_adjusted = stats.false_discovery_control(p_value)
    significant = p_adjusted < alpha
    verdict = np.where(
        significant & (fixed > broken),
        "better",
        np.where(significant & (broken > fixed), "worse", "no significant change"),
    )
    rows = tuple(
        SliceChange(
            tag=tags_[i],
            value=values[i],
            n=int(n[i]),
            errors_before=int(e_before[i]),
            errors_after=int(e_after[i]),
            error_rate_before=float(e_before[i] / n[i]),
            error_rate_after=float(e_after[i] / n[i]),
            fixed=int(fixed[i]),
            broken=int(broken[i]),
            p_value=float(p_value[i]),
            p_adjusted=float(p_adjusted[i]),
            verdict=str(verdict[i]),
            small=bool(n[i] < min_size),
        )
        for i in range(len(n))
    )
    return ModelComparison(rows, float(alpha), int(min_size))
