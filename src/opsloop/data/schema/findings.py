"""What one column of a batch shows against its contract, counted so that chunks add up.

:func:`~opsloop.data.schema.validate` decides some rules on the whole batch, not row by row:
the null share is compared with ``max_null_fraction`` (and tested for chance), and rows out
of range are an anomaly only when their share passes the tolerance. A chunk of the batch
cannot decide those alone, so :class:`ColumnFindings` keeps what every rule needs (counts,
the first examples, the labels of mismatched values, the distinct unknown categories) and
:meth:`ColumnFindings.merge` adds two chunks' findings. :meth:`ColumnFindings.anomalies`
then applies the rules once, to the whole: validating a frame, or the partitions of a
larger one merged in order, gives the same anomalies.

>>> import pandas as pd
>>> from opsloop.data.schema.column import ColumnSchema
>>> column = ColumnSchema("age", "int", min=0, max=120)
>>> a = ColumnFindings.of(pd.Series([30, 150]), column)
>>> b = ColumnFindings.of(pd.Series([40, -5]), column)
>>> [str(x) for x in a.merge(b).anomalies(column)]
['age: out_of_range in 2 rows (50.0%): 1 below min 0, 1 above max 120; e.g. row 1: 150, row 3: -5']
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from opsloop.data.period_columns import period_starts
from opsloop.data.schema.anomaly import Anomaly
from opsloop.data.schema.column import NUMERIC_TYPES, ColumnSchema
from opsloop.data.schema.observe import (
    BOOL,
    FLOAT,
    INT,
    STR,
    ObservedColumn,
    conforms,
    mismatch_labels,
    observe,
    plain_value,
)

#: Examples kept per anomaly.
MAX_EXAMPLES = 5

Examples = tuple[tuple[int, object], ...]


@dataclass(frozen=True)
class RowsFound:
    """Rows that break one rule: how many, and the first :data:`MAX_EXAMPLES` of them as
    ``(row position, value)``."""

    count: int = 0
    examples: Examples = ()

    @classmethod
    def of(cls, series: pd.Series, rows: np.ndarray) -> RowsFound:
        """The rows of the boolean mask ``rows``, with their first values as examples.

        >>> RowsFound.of(pd.Series([5, 6, 7]), np.array([False, True, True]))
        RowsFound(count=2, examples=((1, 6), (2, 7)))
        """
        count = int(np.count_nonzero(rows))
        if not count:
            return cls()
        positions = np.flatnonzero(rows)[:MAX_EXAMPLES]
        return cls(count, tuple((int(p), plain_value(series.iloc[p])) for p in positions))

    def merge(self, other: RowsFound, offset: int) -> RowsFound:
        """Both, ``other``'s rows coming ``offset`` rows after this one's first row.

        >>> RowsFound(1, ((0, "a"),)).merge(RowsFound(1, ((2, "b"),)), 10)
        RowsFound(count=2, examples=((0, 'a'), (12, 'b')))
        """
        shifted = tuple((p + offset, v) for p, v in other.examples)
        return RowsFound(self.count + other.count, (self.examples + shifted)[:MAX_EXAMPLES])


@dataclass(frozen=True)
class RangeFindings:
    """Numbers outside ``[min, max]``: below, above, and beyond the hard limits."""

    outside: RowsFound = RowsFound()
    below: int = 0
    above: int = 0
    beyond: int = 0
    below_beyond: bool = False
    above_beyond: bool = False

    def merge(self, other: RangeFindings, offset: int) -> RangeFindings:
        """Both chunks' range findings (``other`` starting ``offset`` rows later)."""
        return RangeFindings(
            self.outside.merge(other.outside, offset),
            self.below + other.below,
            self.above + other.above,
            self.beyond + other.beyond,
            self.below_beyond or other.below_beyond,
            self.above_beyond or other.above_beyond,
        )


@dataclass(frozen=True)
class ColumnFindings:
    """Everything :func:`~opsloop.data.schema.validate` needs of one column, mergeable.

    ``n_rows`` rows were seen. ``mismatched`` are non-null values of the wrong type, with
    ``mismatch_labels`` (what they were, counted) and ``numeric_strings`` (how many of them
    are strings that read as numbers). ``nulls``, ``non_finite`` (only counted where the
    column forbids ``±inf``), ``out_of_range`` (``None`` where no number was checked) and
    ``unknown`` (category values outside the domain, with ``unknown_values`` the distinct
    ones) follow the rules of :mod:`opsloop.data.schema.validate`.
    """

    n_rows: int
    mismatched: RowsFound = RowsFound()
    mismatch_labels: dict[str, int] = field(default_factory=dict)
    numeric_strings: int = 0
    nulls: RowsFound = RowsFound()
    non_finite: RowsFound | None = None
    out_of_range: RangeFindings | None = None
    unknown: RowsFound | None = None
    unknown_values: frozenset = frozenset()

    @classmethod
    def of(cls, series: pd.Series, column: ColumnSchema) -> ColumnFindings:
        """Read ``series`` once against ``column``'s rules (a Period column as the
        instants its periods start; its examples as the periods themselves)."""
        seen = observe(period_starts(series))
        conforming = conforms(seen, column.type)
        found = cls(len(series), nulls=RowsFound.of(series, seen.null))
        mismatched = ~seen.null & ~conforming
        if mismatched.any():
            found = replace(found, mismatched=RowsFound.of(series, mismatched))
            found = replace(found, **_mismatch_counts(series, seen, column, mismatched))
        if column.type in NUMERIC_TYPES and seen.numbers is not None:
            infinite = conforming & (seen.kind == FLOAT) & ~seen.finite
            bounded = column.max_non_finite_fraction is not None
            if column.type == "float" and (not column.allow_non_finite or bounded):
                found = replace(found, non_finite=RowsFound.of(series, infinite))
            if not column.id_like:
                ranges = _out_of_range(series, seen.numbers, column, conforming & ~infinite)
                found = replace(found, out_of_range=ranges)
        if column.type == "category" and column.domain is not None and not column.id_like:
            unknown = _unknown_categories(series, seen, column.domain, conforming)
            values = frozenset(series.iloc[np.flatnonzero(unknown)].unique().tolist())
            found = replace(found, unknown=RowsFound.of(series, unknown), unknown_values=values)
        return found

    def merge(self, other: ColumnFindings) -> ColumnFindings:
        """The findings of this chunk's rows followed by ``other``'s."""
        offset = self.n_rows
        labels = dict(self.mismatch_labels)
        for label, count in other.mismatch_labels.items():
            labels[label] = labels.get(label, 0) + count
        return ColumnFindings(
            n_rows=self.n_rows + other.n_rows,
            mismatched=self.mismatched.merge(other.mismatched, offset),
            mismatch_labels=labels,
            numeric_strings=self.numeric_strings + other.numeric_strings,
            nulls=self.nulls.merge(other.nulls, offset),
            non_finite=_merge_optional(self.non_finite, other.non_finite, offset),
            out_of_range=_merge_optional(self.out_of_range, other.out_of_range, offset),
            unknown=_merge_optional(self.unknown, other.unknown, offset),
            unknown_values=self.unknown_values | other.unknown_values,
        )

    def anomalies(self, column: ColumnSchema) -> list[Anomaly]:
        """The anomalies of the rows seen, by the rules of
        :mod:`~opsloop.data.schema.validate`, in its order."""
        n = self.n_rows
        found: list[Anomaly] = []

        def add(kind: str, rows: RowsFound, detail: str) -> None:
            if rows.count:
                found.append(
                    Anomaly(column.name, kind, rows.count, rows.count / n, rows.examples, detail)
                )

        if self.mismatched.count:
            add("type_mismatch", self.mismatched, self._mismatch_detail(column))
        detail = null_share_excess(self.nulls.count, n, column)
        if detail:
            add("null_fraction_exceeded", self.nulls, detail)
        if self.non_finite is not None and not column.allow_non_finite:
            add("non_finite", self.non_finite, "±inf where allow_non_finite is false")
        elif self.non_finite is not None:
            detail = non_finite_share_excess(self.non_finite.count, n, column)
            if detail:
                # A share, like the null share: a property of a batch, not of one row.
                add("non_finite_fraction_exceeded", self.non_finite, detail)
        if self.out_of_range is not None:
            detail = _range_detail(self.out_of_range, n, column)
            if detail:
                add("out_of_range", self.out_of_range.outside, detail)
        if self.unknown is not None and self.unknown.count:
            distinct = len(self.unknown_values)
            noun = "value" if distinct == 1 else "values"
            add("unknown_category", self.unknown, f"{distinct} distinct {noun} not in the domain")
        return found

    def _mismatch_detail(self, column: ColumnSchema) -> str:
        ordered = sorted(self.mismatch_labels.items(), key=lambda item: (-item[1], item[0]))
        found = ", ".join(f"{label} ×{count}" for label, count in ordered)
        detail = f"expected {column.type}, found {found}"
        if self.numeric_strings:
            detail += f" ({self.numeric_strings} of them read as numbers)"
        return detail


def null_share_p_value(nulls: int, rows: int, allowed: float) -> float:
    """One-sided binomial p-value of ``nulls`` or more null rows in ``rows`` when each row is
    null with probability ``allowed`` (scipy's ``binomtest(..., alternative="greater")``).

    >>> round(null_share_p_value(2, 20, 0.05), 4)  # 10% of 20 rows: no evidence against 5%
    0.2642
    >>> null_share_p_value(200, 2_000, 0.05) < 1e-9
    True
    """
    if nulls == 0:
        return 1.0
    from scipy.special import bdtrc

    # bdtrc(k, n, p) is P(X > k), so P(X >= nulls) is bdtrc(nulls - 1, ...)
    return float(bdtrc(nulls - 1, rows, allowed))


def percent(share: float) -> str:
    """``share`` (a fraction of the rows) as a percentage to four significant digits, in
    plain decimals however small (a share is read beside a limit, and ``1e-05%`` beside
    ``0.01%`` is easy to misread).

    >>> percent(0.3), percent(1 / 3), percent(1e-7), percent(0.0121), percent(0.0)
    ('30%', '33.33%', '0.00001%', '1.21%', '0%')
    """
    return f"{np.format_float_positional(share * 100, precision=4, fractional=False, trim='-')}%"


def null_share_excess(nulls: int, rows: int, column: ColumnSchema) -> str:
    """Why the null share breaks the column's rule, or "" when it does not.

    >>> null_share_excess(3, 10, ColumnSchema("x", "float", max_null_fraction=0.1))
    '30% of the rows are null, above max_null_fraction 10%'
    >>> null_share_excess(4, 4, ColumnSchema("x", "float"))
    '100% of the rows are null, above max_null_fraction 0%'
    >>> null_share_excess(1, 10_000_000, ColumnSchema("x", "float"))
    '0.00001% of the rows are null, above max_null_fraction 0%'
    """
    share = nulls / rows
    if share <= column.max_null_fraction:
        return ""
    limit = (
        f"{percent(share)} of the rows are null, above max_null_fraction "
        f"{percent(column.max_null_fraction)}"
    )
    if not column.null_significance:
        return limit
    p_value = null_share_p_value(nulls, rows, column.max_null_fraction)
    if p_value >= column.null_significance:
        return ""
    return (
        f"{limit} beyond chance ({nulls} of {rows} rows, binomial p-value {p_value:.3g} below "
        f"null_significance {column.null_significance:g})"
    )


def non_finite_share_excess(count: int, rows: int, column: ColumnSchema) -> str:
    """Why the share of ``±inf`` rows breaks ``max_non_finite_fraction``, or "" when it
    does not (judged as :func:`null_share_excess` judges nulls).

    >>> column = ColumnSchema("x", "float", allow_non_finite=True,
    ...                       max_non_finite_fraction=0.0121, non_finite_significance=0.001)
    >>> non_finite_share_excess(569, 569, column)[:82]
    '100% of the rows are ±inf, above max_non_finite_fraction 1.21% beyond chance (569 '
    >>> non_finite_share_excess(1, 50, column)  # 2% of 50 rows: no evidence against 1.21%
    ''
    """
    allowed = column.max_non_finite_fraction
    if allowed is None or count / rows <= allowed:
        return ""
    limit = (
        f"{percent(count / rows)} of the rows are ±inf, above max_non_finite_fraction "
        f"{percent(allowed)}"
    )
    if not column.non_finite_significance:
        return limit
    p_value = null_share_p_value(count, rows, allowed)
    if p_value >= column.non_finite_significance:
        return ""
    return (
        f"{limit} beyond chance ({count} of {rows} rows, binomial p-value {p_value:.3g} below "
        f"non_finite_significance {column.non_finite_significance:g})"
    )


def _merge_optional(a, b, offset: int):
    if a is None:
        return b if b is None else _shifted(b, offset)
    if b is None:
        return a
    return a.merge(b, offset)


def _shifted(found, offset: int):
    # A rule the first chunk never checked (no number in it) still counts from its rows on.
    empty = RowsFound() if isinstance(found, RowsFound) else RangeFindings()
    return empty.merge(found, offset)


def _mismatch_counts(
    series: pd.Series, seen: ObservedColumn, column: ColumnSchema, mismatched: np.ndarray
) -> dict:
    rows = np.flatnonzero(mismatched)
    counts = pd.Series(mismatch_labels(seen, column.type, rows)).value_counts()
    labels = {str(label): int(count) for label, count in counts.items()}
    numeric = 0
    strings = rows[seen.kind[rows] == STR]
    if column.type in NUMERIC_TYPES and len(strings):
        as_numbers = pd.to_numeric(series.iloc[strings], errors="coerce")
        numeric = int(as_numbers.notna().sum())
    return {"mismatch_labels": labels, "numeric_strings": numeric}


def _out_of_range(
    series: pd.Series, numbers: np.ndarray, column: ColumnSchema, checked: np.ndarray
) -> RangeFindings:
    # Only checked rows are compared: the others hold placeholders (0 or NaN).
    below = np.zeros(len(numbers), dtype=bool)
    above = np.zeros(len(numbers), dtype=bool)
    beyond = np.zeros(len(numbers), dtype=bool)
    hard_low, hard_high = column.hard_limits()
    if column.min is not None:
        below[checked] = numbers[checked] < column.min
        beyond[checked] |= numbers[checked] < hard_low
    if column.max is not None:
        above[checked] = numbers[checked] > column.max
        beyond[checked] |= numbers[checked] > hard_high
    return RangeFindings(
        outside=RowsFound.of(series, below | above),
        below=int(below.sum()),
        above=int(above.sum()),
        beyond=int(beyond.sum()),
        below_beyond=bool((below & beyond).any()),
        above_beyond=bool((above & beyond).any()),
    )


def _range_detail(found: RangeFindings, n: int, column: ColumnSchema) -> str:
    """Why the rows out of range are an anomaly, or "" when they are tolerated."""
    share = float(found.outside.count) / n
    if not found.beyond and share <= column.max_out_of_range_fraction:
        return ""
    hard_low, hard_high = column.hard_limits()
    parts = []
    if found.below:
        parts.append(f"{found.below} below min {column.min}")
    if found.above:
        parts.append(f"{found.above} above max {column.max}")
    if found.beyond and column.range_margin:
        limits = []
        if found.below_beyond:
            limits.append(f"below {hard_low:g}")
        if found.above_beyond:
            limits.append(f"above {hard_high:g}")
        parts.append(f"{found.beyond} of them beyond the margin ({', '.join(limits)})")
    if share > column.max_out_of_range_fraction and column.max_out_of_range_fraction:
        parts.append(
            f"{percent(share)} of the rows, above the tolerance "
            f"{percent(column.max_out_of_range_fraction)} (max_out_of_range_fraction)"
        )
    return ", ".join(parts)


def _unknown_categories(
    series: pd.Series,
    seen: ObservedColumn,
    domain: tuple[str | int | float | bool, ...],
    conforming: np.ndarray,
) -> np.ndarray:
    unknown = np.zeros(len(series), dtype=bool)
    # One kind at a time: pandas hashes True, 1 and 1.0 as the same value.
    for value_kind, python_type in ((STR, str), (INT, int), (FLOAT, float), (BOOL, bool)):
        rows = conforming & (seen.kind == value_kind)
        if not rows.any():
            continue
        allowed = [v for v in domain if type(v) is python_type]
        if rows.all():
            unknown |= ~series.isin(allowed).to_numpy(dtype=bool)
        else:
            where = np.flatnonzero(rows)
            unknown[where] = ~series.iloc[where].isin(allowed).to_numpy(dtype=bool)
    return unknown
