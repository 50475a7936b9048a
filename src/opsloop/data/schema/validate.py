"""Check a batch against a :class:`~opsloop.data.schema.Schema` and report every anomaly.

Validation never raises for bad data: it counts, per column, the rows that break each rule
and keeps up to five examples as ``(row position, value)`` pairs, positions being 0-based
``iloc`` positions, not index labels. It raises only for bad arguments.

Rules, per column (a value is checked by the later rules only if it has the right type):

* ``type_mismatch``: a non-null value that is not of the column's logical type. Values are
  judged as Python values whatever the dtype: ``"abc"`` or ``True`` in an int column, ``2.5``
  or ``inf`` in an int column (a whole float such as ``3.0`` is an int: pandas stores an int
  column with a missing value as float64), a string in a float column. Strings of digits (a
  CSV column read as text) are **strings**, hence a type mismatch in a numeric column: the
  detail says how many of them read as numbers, so the fix (``pd.to_numeric`` before
  validating) is plain. A float column takes ints; a category takes strings, numbers and
  bools (its domain says which).
* ``null_fraction_exceeded``: the share of nulls (``None``, ``NaN``, ``pd.NA``, ``NaT``)
  is above ``max_null_fraction`` (with ``null_significance`` above zero, as an inferred
  schema sets it: above it beyond chance, by a one-sided binomial test of the null count).
* ``non_finite``: ``±inf`` in a float column whose schema does not set ``allow_non_finite``.
* ``out_of_range``: numbers below ``min`` or above ``max`` (allowed ``±inf`` are not
  range-checked), reported with their share of the rows. It is an anomaly when that share is
  above the column's ``max_out_of_range_fraction``, or when any value lies beyond the margin
  (:meth:`~opsloop.data.schema.ColumnSchema.hard_limits`). Columns marked ``id_like`` are not
  range-checked.
* ``unknown_category``: a category value outside the recorded domain (not checked for
  ``id_like`` columns).

and for the frame: ``empty_frame`` (no rows), ``missing_column`` (a required column of the
environment is absent), ``unexpected_column`` (a column the schema does not define, or one it
leaves out of the environment being validated, such as a label in serving data),
``duplicate_column`` (a name that appears twice; the first is checked). Column names are
matched as text, so a column labelled ``0`` matches a schema column ``"0"``.

Only ``object`` columns are inspected value by value (by Python type, see
:mod:`~opsloop.data.schema.observe`); other dtypes are checked with whole-array operations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opsloop.data.schema.anomaly import Anomaly, ValidationResult
from opsloop.data.schema.column import NUMERIC_TYPES, ColumnSchema
from opsloop.data.schema.model import Schema
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

_MAX_EXAMPLES = 5


def validate(df: pd.DataFrame, schema: Schema, environment: str | None = None) -> ValidationResult:
    """Validate ``df`` against ``schema`` in ``environment`` (see the module docstring).

    Anomalies come frame first, then columns in schema order (presence, then values), then
    columns the schema does not expect, in frame order. ``environment=None`` expects every
    column of the schema.

    >>> import pandas as pd
    >>> from opsloop.data.schema import infer_schema
    >>> schema = infer_schema(pd.DataFrame({"age": [31, 45, 52]}))
    >>> result = validate(pd.DataFrame({"age": ["40", 160, 38]}, dtype=object), schema)
    >>> print(result)
    2 anomalies in 3 rows (schema version 1):
      age: type_mismatch in 1 row (33.3%): expected int, found str ×1 (1 of them read as numbers); e.g. row 0: '40'
      age: out_of_range in 1 row (33.3%): 1 above max 52, 1 of them beyond the margin (above 73); e.g. row 1: 160
    """  # noqa: E501
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate expects a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(schema, Schema):
        raise TypeError(f"validate expects a Schema, got {type(schema).__name__}")
    if environment is not None and not isinstance(environment, str):
        raise TypeError(f"environment must be a string or None, got {environment!r}")
    expected = schema.expected_columns(environment)
    n = len(df)
    anomalies: list[Anomaly] = []
    if n == 0:
        anomalies.append(Anomaly(None, "empty_frame", 0, 0.0, (), "the batch has no rows"))
    positions: dict[str, list[int]] = {}
    for position, label in enumerate(df.columns):
        positions.setdefault(str(label), []).append(position)
    for name, found in positions.items():
        if len(found) > 1:
            detail = f"appears {len(found)} times (positions {found}); the first is checked"
            anomalies.append(Anomaly(name, "duplicate_column", n, 1.0, (), detail))
    in_environment = f" in environment {environment!r}" if environment is not None else ""
    for column in expected:
        if column.name not in positions:
            if column.required:
                detail = f"required column of type {column.type} is not in the frame"
                anomalies.append(
                    Anomaly(column.name, "missing_column", n, 1.0, (), detail + in_environment)
                )
        elif n > 0:
            series = df.iloc[:, positions[column.name][0]]
            anomalies += _check_values(series, column)
    expected_names = {c.name for c in expected}
    for name in positions:
        if name in expected_names:
            continue
        if name in schema:
            detail = f"the schema leaves this column out of environment {environment!r}"
        else:
            detail = "the schema does not define this column"
        anomalies.append(Anomaly(name, "unexpected_column", n, 1.0, (), detail))
    return ValidationResult(tuple(anomalies), n, schema.version, environment)


def _check_values(series: pd.Series, column: ColumnSchema) -> list[Anomaly]:
    seen = observe(series)
    conforming = conforms(seen, column.type)
    checks: list[tuple[str, np.ndarray, str]] = []
    mismatched = ~seen.null & ~conforming
    if mismatched.any():
        detail = _mismatch_detail(series, seen, column, mismatched)
        checks.append(("type_mismatch", mismatched, detail))
    detail = _null_share_excess(int(seen.null.sum()), len(series), column)
    if detail:
        checks.append(("null_fraction_exceeded", seen.null, detail))
    if column.type in NUMERIC_TYPES and seen.numbers is not None:
        infinite = conforming & (seen.kind == FLOAT) & ~seen.finite
        if column.type == "float" and not column.allow_non_finite:
            checks.append(("non_finite", infinite, "±inf where allow_non_finite is false"))
        if not column.id_like:
            checks.append(
                ("out_of_range", *_out_of_range(seen.numbers, column, conforming & ~infinite))
            )
    if column.type == "category" and column.domain is not None and not column.id_like:
        unknown = _unknown_categories(series, seen, column.domain, conforming)
        if unknown.any():
            distinct = series.iloc[np.flatnonzero(unknown)].nunique()
            noun = "value" if distinct == 1 else "values"
            detail = f"{distinct} distinct {noun} not in the domain"
            checks.append(("unknown_category", unknown, detail))
    found = []
    for kind, rows, detail in checks:
        count = int(rows.sum())
        if count:
            examples = _examples(series, rows)
            found.append(Anomaly(column.name, kind, count, count / len(rows), examples, detail))
    return found


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


def _null_share_excess(nulls: int, rows: int, column: ColumnSchema) -> str:
    """Why the null share breaks the column's rule, or "" when it does not."""
    share = nulls / rows
    if share <= column.max_null_fraction:
        return ""
    limit = (
        f"{share:.4g} of the rows are null, above max_null_fraction {column.max_null_fraction:g}"
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


def _out_of_range(
    numbers: np.ndarray, column: ColumnSchema, checked: np.ndarray
) -> tuple[np.ndarray, str]:
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
    outside = below | above
    share = float(outside.sum()) / len(numbers)
    if not beyond.any() and share <= column.max_out_of_range_fraction:
        return np.zeros(len(numbers), dtype=bool), ""
    parts = []
    if below.any():
        parts.append(f"{int(below.sum())} below min {column.min}")
    if above.any():
        parts.append(f"{int(above.sum())} above max {column.max}")
    if beyond.any() and column.range_margin:
        limits = []
        if (below & beyond).any():
            limits.append(f"below {hard_low:g}")
        if (above & beyond).any():
            limits.append(f"above {hard_high:g}")
        parts.append(f"{int(beyond.sum())} of them beyond the margin ({', '.join(limits)})")
    if share > column.max_out_of_range_fraction and column.max_out_of_range_fraction:
        parts.append(
            f"{share:.4g} of the rows, above the tolerance {column.max_out_of_range_fraction:g}"
        )
    return outside, ", ".join(parts)


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


def _mismatch_detail(
    series: pd.Series, seen: ObservedColumn, column: ColumnSchema, mismatched: np.ndarray
) -> str:
    rows = np.flatnonzero(mismatched)
    counts = pd.Series(mismatch_labels(seen, column.type, rows)).value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    found = ", ".join(f"{label} ×{count}" for label, count in ordered)
    detail = f"expected {column.type}, found {found}"
    strings = rows[seen.kind[rows] == STR]
    if column.type in NUMERIC_TYPES and len(strings):
        as_numbers = pd.to_numeric(series.iloc[strings], errors="coerce")
        numeric = int(as_numbers.notna().sum())
        if numeric:
            detail += f" ({numeric} of them read as numbers)"
    return detail


def _examples(series: pd.Series, rows: np.ndarray) -> tuple[tuple[int, object], ...]:
    positions = np.flatnonzero(rows)[:_MAX_EXAMPLES]
    return tuple((int(p), plain_value(series.iloc[p])) for p in positions)
