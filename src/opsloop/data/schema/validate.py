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
* ``non_finite_fraction_exceeded``: where it does and sets ``max_non_finite_fraction``, a
  share of ``±inf`` rows above that bound (beyond chance when ``non_finite_significance``
  is set), judged as the null share is: a property of a batch, not of one row.
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
Each column's rows are counted into :class:`~opsloop.data.schema.findings.ColumnFindings`
and the rules applied to the whole once, so a partitioned frame validated partition by
partition (:mod:`opsloop.data.distributed`) gets the same anomalies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from opsloop.data.schema.anomaly import Anomaly, ValidationResult
from opsloop.data.schema.findings import ColumnFindings, null_share_p_value
from opsloop.data.schema.model import Schema

__all__ = ["assemble_result", "null_share_p_value", "validate"]


def validate(df, schema: Schema, environment: str | None = None) -> ValidationResult:
    """Validate ``df`` against ``schema`` in ``environment`` (see the module docstring).

    Anomalies come frame first, then columns in schema order (presence, then values), then
    columns the schema does not expect, in frame order. ``environment=None`` expects every
    column of the schema. ``opsloop.data.schema.validate`` also takes a ``dask.dataframe``
    (:func:`opsloop.data.distributed.schema.validate_dask`), with the same result.

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
    _check_arguments(schema, environment)
    positions = _positions(df.columns)
    findings = {}
    if len(df) > 0:
        for column in schema.expected_columns(environment):
            if column.name in positions:
                series = df.iloc[:, positions[column.name][0]]
                findings[column.name] = ColumnFindings.of(series, column)
    return assemble_result(list(df.columns), len(df), schema, environment, findings)


def assemble_result(
    labels: Sequence,
    n: int,
    schema: Schema,
    environment: str | None,
    findings: Mapping[str, ColumnFindings],
) -> ValidationResult:
    """The result of validating ``n`` rows with column ``labels``, given the findings of
    each expected column present (by name): frame-level anomalies from the labels, the
    others from the findings.

    >>> from opsloop.data.schema import ColumnSchema, Schema
    >>> schema = Schema((ColumnSchema("x", "int"),))
    >>> print(assemble_result(["y"], 4, schema, None, {}))
    2 anomalies in 4 rows (schema version 1):
      x: missing_column in 4 rows (100.0%): required column of type int is not in the frame
      y: unexpected_column in 4 rows (100.0%): the schema does not define this column
    """
    _check_arguments(schema, environment)
    expected = schema.expected_columns(environment)
    anomalies: list[Anomaly] = []
    if n == 0:
        anomalies.append(Anomaly(None, "empty_frame", 0, 0.0, (), "the batch has no rows"))
    positions = _positions(labels)
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
            anomalies += findings[column.name].anomalies(column)
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


def _check_arguments(schema: Schema, environment: str | None) -> None:
    if not isinstance(schema, Schema):
        raise TypeError(f"validate expects a Schema, got {type(schema).__name__}")
    if environment is not None and not isinstance(environment, str):
        raise TypeError(f"environment must be a string or None, got {environment!r}")


def _positions(labels) -> dict[str, list[int]]:
    positions: dict[str, list[int]] = {}
    for position, label in enumerate(labels):
        positions.setdefault(str(label), []).append(position)
    return positions
