"""Error analysis by tag against a baseline: where does improving the model pay most?

For every value of every tag (and, if asked, every intersection of two tags) four numbers:

* ``share_of_errors``: the fraction of all the model's errors that carry the tag,
* ``error_rate``: the fraction of rows with the tag that the model gets wrong,
* ``share_of_data``: the fraction of all rows that carry the tag,
* ``room``: room for improvement, ``max(error_rate - baseline_error_rate, 0) * share_of_data``,
  the overall error rate that would go if the model reached the baseline (human-level
  performance) on that slice.

The three proportions carry Wilson score intervals. The interval of ``room`` carries only the
uncertainty of the slice's error rate (its Wilson bounds minus the baseline, clipped at 0,
times the share of data): the baseline and the share are taken as known. Rows are sorted by
``room``, then by errors. Slices under ``min_size`` rows are flagged ``small``: their rates are
too noisy to act on. Counting is one ``np.bincount`` per tag, so a million rows take
milliseconds.

>>> result = error_analysis([1, 1, 0, 0], [1, 0, 0, 1], {"device": ["pc", "tv", "tv", "tv"]})
>>> [(r.value, r.errors, round(r.error_rate, 3)) for r in result.rows]
[('tv', 2, 0.667), ('pc', 0, 0.0)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from opsloop.analysis.baseline import HumanLevel
from opsloop.analysis.baseline import hlp as measure_baseline
from opsloop.analysis.intervals import wilson_interval
from opsloop.analysis.labels import as_labels
from opsloop.analysis.tags import binned_tags, tag_groupings
from opsloop.data.label_task import MAX_CLASSES, infer_task

#: Columns of :meth:`ErrorAnalysis.to_frame`, in order.
COLUMNS = (
    "tag",
    "value",
    "n",
    "errors",
    "share_of_errors",
    "share_of_errors_low",
    "share_of_errors_high",
    "error_rate",
    "error_rate_low",
    "error_rate_high",
    "share_of_data",
    "share_of_data_low",
    "share_of_data_high",
    "baseline_error_rate",
    "gap",
    "room",
    "room_low",
    "room_high",
    "small",
)


@dataclass(frozen=True)
class TagErrors:
    """The four numbers of one tag value, with their intervals (see the module docstring).

    >>> row = error_analysis([1, 0], [0, 0], {"g": ["a", "b"]}).rows[0]
    >>> row.value, row.share_of_errors, row.error_rate, row.share_of_data
    ('a', 1.0, 1.0, 0.5)
    """

    tag: str
    value: str
    n: int
    errors: int
    share_of_errors: float
    share_of_errors_low: float
    share_of_errors_high: float
    error_rate: float
    error_rate_low: float
    error_rate_high: float
    share_of_data: float
    share_of_data_low: float
    share_of_data_high: float
    baseline_error_rate: float | None
    gap: float | None
    room: float | None
    room_low: float | None
    room_high: float | None
    small: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values (``None`` for what needs a baseline when there is none).

        >>> error_analysis([1], [1], {"g": ["a"]}, min_size=1).rows[0].to_dict()["room"]
        """
        return {k: _plain(v) for k, v in asdict(self).items()}

    def __str__(self) -> str:
        """One line: the slice, its size and errors, its rates with intervals.

        >>> print(error_analysis([1, 0], [0, 0], {"g": ["a", "b"]}, hlp=0.0).rows[0])
        g=a: 1 of 1 rows wrong, error rate 100.0% [20.7%, 100.0%], 100.0% of errors, 50.0% of data, room 50.0% [10.3%, 50.0%] (small)
        """  # noqa: E501
        text = (
            f"{self.tag}={self.value}: {self.errors} of {self.n} rows wrong, error rate "
            f"{_ranged(self.error_rate, self.error_rate_low, self.error_rate_high)}, "
            f"{_percent(self.share_of_errors)} of errors, {_percent(self.share_of_data)} of data"
        )
        if self.room is not None:
            text += f", room {_ranged(self.room, self.room_low, self.room_high)}"
        return text + (" (small)" if self.small else "")


class Slices(tuple):
    """Slices picked from an :class:`ErrorAnalysis` (a tuple of :class:`TagErrors`) that
    prints as a table, one slice a line, as a pandas frame prints.

    >>> devices = {"d": ["pc", "tv", "tv", "tv"]}
    >>> print(error_analysis([1, 1, 0, 0], [1, 0, 0, 1], devices, min_size=1).top(2))
    tag  value  n  errors  error rate            share of errors  share of data
    d    tv     3       2  66.7% [20.8%, 93.9%]  100.0%           75.0%
    d    pc     1       0  0.0% [0.0%, 79.3%]    0.0%             25.0%
    """

    def to_frame(self) -> pd.DataFrame:
        """One row per slice, the columns of :meth:`ErrorAnalysis.to_frame`.

        >>> error_analysis([1], [0], {"g": ["a"]}, min_size=1).top(1).to_frame().shape
        (1, 19)
        """
        return pd.DataFrame([row.to_dict() for row in self], columns=list(COLUMNS))

    def __str__(self) -> str:
        if not self:
            return "no slices"
        has_room = any(row.room is not None for row in self)
        table = {
            "tag": [row.tag for row in self],
            "value": [row.value for row in self],
            "n": [row.n for row in self],
            "errors": [row.errors for row in self],
            "error rate": [
                _ranged(r.error_rate, r.error_rate_low, r.error_rate_high) for r in self
            ],
            "share of errors": [_percent(row.share_of_errors) for row in self],
            "share of data": [_percent(row.share_of_data) for row in self],
        }
        if has_room:
            table["room"] = [_ranged(r.room, r.room_low, r.room_high) for r in self]
        if any(row.small for row in self):
            table["small"] = ["yes" if row.small else "" for row in self]
        return _text_table(table, right=("n", "errors"))

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.to_frame()._repr_html_()


@dataclass(frozen=True)
class ErrorAnalysis:
    """Error analysis of one model: overall numbers and one :class:`TagErrors` per slice.

    >>> result = error_analysis([1, 0, 1, 0], [1, 1, 1, 1], {"g": list("aabb")}, hlp=0.25)
    >>> result.error_rate, [round(r.room, 3) for r in result.rows]
    (0.5, [0.125, 0.125])
    """

    n: int
    errors: int
    error_rate: float
    baseline_error_rate: float | None
    confidence: float
    min_size: int
    rows: tuple[TagErrors, ...]
    #: ``(tag, bins)`` of each numeric tag cut into quantile bins (see :mod:`.tags`).
    binned: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def top(self, k: int = 3) -> Slices:
        """The ``k`` slices with the most room for improvement, small slices left out (a
        tuple of :class:`TagErrors` that prints as a table).

        >>> error_analysis([1, 0], [0, 0], {"g": ["a", "b"]}, hlp=0.0, min_size=1).top(1)[0].value
        'a'
        """
        return Slices(tuple(row for row in self.rows if not row.small)[:k])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values, rows as a list of dicts.

        >>> error_analysis([1, 0], [0, 0], {"g": ["a", "b"]}).to_dict()["errors"]
        1
        """
        return {
            "n": int(self.n),
            "errors": int(self.errors),
            "error_rate": float(self.error_rate),
            "baseline_error_rate": _plain(self.baseline_error_rate),
            "confidence": float(self.confidence),
            "min_size": int(self.min_size),
            "rows": [row.to_dict() for row in self.rows],
            "binned": {tag: list(bins) for tag, bins in self.binned},
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per slice, in the order of :attr:`rows`.

        >>> error_analysis([1, 0], [0, 0], {"g": ["a", "b"]}).to_frame().shape
        (2, 19)
        """
        return pd.DataFrame([row.to_dict() for row in self.rows], columns=list(COLUMNS))

    def __str__(self) -> str:
        """The overall numbers, then every slice as a table.

        >>> print(error_analysis([1, 0, 1, 0], [1, 1, 1, 1], {"g": list("aabb")}, hlp=0.25))
        2 of 4 rows wrong (error rate 50.0%, baseline 25.0%); slices under 30 rows are small
        tag  value  n  errors  error rate             share of errors  share of data  room                   small
        g    a      2       1  50.0% [9.5%, 90.5%]    50.0%            50.0%          12.5% [0.0%, 32.7%]    yes
        g    b      2       1  50.0% [9.5%, 90.5%]    50.0%            50.0%          12.5% [0.0%, 32.7%]    yes
        """  # noqa: E501
        baseline = (
            ""
            if self.baseline_error_rate is None
            else f", baseline {_percent(self.baseline_error_rate)}"
        )
        head = (
            f"{self.errors} of {self.n} rows wrong (error rate {_percent(self.error_rate)}"
            f"{baseline}); slices under {self.min_size} rows are small"
        )
        return head + "\n" + str(Slices(self.rows))


def error_analysis(
    y_true: Any,
    y_pred: Any,
    tags: Any,
    *,
    hlp: float | HumanLevel | Any = None,
    intersections: bool | Sequence[tuple[str, str]] = False,
    bins: int = 5,
    confidence: float = 0.95,
    min_size: int = 30,
) -> ErrorAnalysis:
    """Error analysis of predictions ``y_pred`` by the tag columns of ``tags``.

    ``hlp`` is the baseline: ``None`` (no room for improvement computed), an error rate
    (``0.05``), a :class:`~opsloop.analysis.baseline.HumanLevel` from
    :func:`~opsloop.analysis.baseline.hlp`, whose per-tag rates are used where it measured
    the same tag value and its overall rate elsewhere, or another model's (or labeller's)
    predictions of the same rows, measured per tag the same way. ``intersections`` adds
    slices for pairs of tags (``True`` for every pair). Labels may be of any type; a row is
    an error where ``y_pred != y_true``.

    That count needs class labels: labels or predictions that
    :func:`opsloop.data.label_task.infer_task` calls a regression's (floats with a fractional
    part, or more than 20 distinct whole-valued floats) are refused with a
    :class:`ValueError`, since every continuous prediction differs from its label. Integer
    labels are classes however many there are (26 classes coded 0..25 are counted). For a
    regression use :func:`~opsloop.analysis.slices.slice_metrics` with a regression metric
    (the mean absolute error per slice, with intervals) or
    :func:`~opsloop.analysis.residuals.residual_analysis`.

    >>> result = error_analysis([0, 0, 1, 1], [0, 1, 1, 0], {"g": list("abab")}, min_size=2)
    >>> [(r.value, r.error_rate, r.small) for r in result.rows]
    [('b', 1.0, False), ('a', 0.0, False)]
    """
    truth = as_labels(y_true, "y_true")
    predicted = as_labels(y_pred, "y_pred", len(truth))
    _refuse_regression(truth, predicted)
    if isinstance(min_size, bool) or not isinstance(min_size, int | np.integer) or min_size < 1:
        raise ValueError(f"min_size must be an integer >= 1, got {min_size!r}")
    if isinstance(hlp, np.ndarray | pd.Series | list | tuple):
        # another model's (or labeller's) predictions of the same rows: measure them
        hlp = measure_baseline(
            hlp, truth, tags, bins=bins, confidence=confidence, intersections=intersections
        )
    baseline = _baseline(hlp)
    wrong = predicted != truth
    n_total = len(truth)
    total_errors = int(wrong.sum())
    rows: list[TagErrors] = []
    groupings = tag_groupings(tags, n_total, bins=bins, intersections=intersections)
    for grouping in groupings:
        n = grouping.counts()
        errors = grouping.counts(wrong)
        share_errors = errors / total_errors if total_errors else np.full(len(n), np.nan)
        share_errors_ci = wilson_interval(errors, np.full(len(n), total_errors), confidence)
        rate = errors / n
        rate_ci = wilson_interval(errors, n, confidence)
        share_data = n / n_total
        share_data_ci = wilson_interval(n, np.full(len(n), n_total), confidence)
        if baseline is None:
            base = gap = room = room_low = room_high = np.full(len(n), np.nan)
        else:
            base = np.array(
                [
                    baseline.error_rate_for(grouping.tag, str(value))
                    if isinstance(baseline, HumanLevel)
                    else baseline
                    for value in grouping.labels
                ],
                dtype=np.float64,
            )
            gap = rate - base
            room = np.maximum(gap, 0.0) * share_data
            room_low = np.maximum(rate_ci[0] - base, 0.0) * share_data
            room_high = np.maximum(rate_ci[1] - base, 0.0) * share_data
        columns = (
            grouping.labels,
            n,
            errors,
            share_errors,
            *share_errors_ci,
            rate,
            *rate_ci,
            share_data,
            *share_data_ci,
            base,
            gap,
            room,
            room_low,
            room_high,
        )
        rows.extend(
            TagErrors(
                grouping.tag,
                str(values[0]),
                *(_plain(v) for v in values[1:]),
                small=bool(values[1] < min_size),
            )
            for values in zip(*columns, strict=True)
        )
    rows.sort(key=lambda r: (-(r.room if r.room is not None else -1.0), -r.errors, r.tag, r.value))
    return ErrorAnalysis(
        n=n_total,
        errors=total_errors,
        error_rate=total_errors / n_total,
        baseline_error_rate=None if baseline is None else _overall(baseline),
        confidence=float(confidence),
        min_size=int(min_size),
        rows=tuple(rows),
        binned=binned_tags(groupings),
    )


def _refuse_regression(truth: np.ndarray, predicted: np.ndarray) -> None:
    for name, values in (("y_pred", predicted), ("y_true", truth)):
        if infer_task(values, name) == "regression":
            raise ValueError(
                f"error_analysis counts rows where y_pred != y_true and needs class labels, but "
                f"{name} holds a regression's numbers (floats with a fractional part or more "
                f"than {MAX_CLASSES} distinct whole values); for a regression use "
                "slice_metrics(y_true, y_pred, tags, {'mae': mean_absolute_error}) or "
                "residual_analysis, and pass class labels coded as many floats as integers"
            )


def _baseline(hlp: Any) -> float | HumanLevel | None:
    if hlp is None or isinstance(hlp, HumanLevel):
        return hlp
    if isinstance(hlp, bool) or not isinstance(hlp, int | float | np.integer | np.floating):
        raise TypeError(
            f"hlp must be None, an error rate, a HumanLevel from hlp() or baseline predictions, "
            f"got {type(hlp).__name__}"
        )
    if not 0.0 <= float(hlp) <= 1.0:
        raise ValueError(f"hlp must be an error rate between 0 and 1, got {hlp!r}")
    return float(hlp)


def _overall(baseline: float | HumanLevel) -> float:
    return baseline.error_rate if isinstance(baseline, HumanLevel) else baseline


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _ranged(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1%} [{_percent(low)}, {_percent(high)}]"


def _text_table(columns: dict[str, list], right: tuple[str, ...]) -> str:
    # Counts align right, text left, two spaces between columns: what pandas prints.
    cells = {name: [str(v) for v in values] for name, values in columns.items()}
    widths = {name: max(len(name), *map(len, values)) for name, values in cells.items()}

    def line(parts: dict[str, str]) -> str:
        return "  ".join(
            parts[name].rjust(widths[name]) if name in right else parts[name].ljust(widths[name])
            for name in cells
        ).rstrip()

    n = len(next(iter(cells.values())))
    lines = [line({name: name for name in cells})]
    lines += [line({name: values[i] for name, values in cells.items()}) for i in range(n)]
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    return value
