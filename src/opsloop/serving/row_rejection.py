"""Which rows of a batch a model version's signature refuses, and why, row by row.

A served request is refused whole when one of its records breaks a rule
(:mod:`.record_validation`). A batch file is not: batch scoring scores the rows that obey
the signature and sets the others aside with their reason. :func:`rejected_rows` applies the
same per-record rules as the serving path, on whole columns:

* ``type_mismatch``: a value not of the column's logical type;
* ``null_fraction_exceeded``: a null (``None``, ``NaN``) where the column allows none
  (``max_null_fraction`` 0), as :func:`opsloop.data.schema.validate` names it;
* ``non_finite``: ``±inf`` in a float column that does not allow it;
* ``out_of_range``: a number beyond the column's hard limits (its range widened by its
  margin, :meth:`~opsloop.data.schema.ColumnSchema.hard_limits`);
* ``unknown_category``: a category outside the column's domain.

A CSV file has text only: :func:`typed_from_text` reads the schema's columns as their
logical types first, leaving a value that does not read as its type as text, so that the
rules above name it.

>>> import pandas as pd
>>> from opsloop.data.schema import ColumnSchema, Schema
>>> schema = Schema((ColumnSchema("age", "int", min=18, max=90),))
>>> frame = typed_from_text(pd.DataFrame({"age": ["41", "forty", "300"]}), schema)
>>> rejected_rows(frame, schema)[["row", "field", "rule"]].values.tolist()
[[1, 'age', 'type_mismatch'], [2, 'age', 'out_of_range']]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opsloop.data.excerpt import excerpt
from opsloop.data.schema import ColumnSchema, Schema
from opsloop.data.schema.observe import BOOL, FLOAT, INT, STR, conforms, observe, plain_value
from opsloop.errors import InvalidArgumentError

#: Columns of :func:`rejected_rows`'s frame.
REJECTION_COLUMNS = ("row", "field", "rule", "detail")


def null_name(value: object) -> str:
    """How a refusal names a null value: ``NaN`` for a float NaN (what a JSON client sent),
    else ``null``.

    >>> null_name(float("nan")), null_name(None), null_name(pd.NA)
    ('NaN', 'null', 'null')
    """
    return "NaN" if isinstance(value, float) and value != value else "null"


def signature_columns(schema: Schema) -> tuple[ColumnSchema, ...]:
    """The columns a served record carries (:meth:`~opsloop.data.schema.Schema.
    serving_columns`): the schema's ``serving`` environment where it has one, else every
    column.

    >>> from opsloop.data.schema import ColumnSchema, Schema
    >>> [c.name for c in signature_columns(Schema((ColumnSchema("x", "float"),)))]
    ['x']
    """
    return schema.serving_columns()


def missing_columns(columns: pd.Index, schema: Schema) -> None:
    """Raise when a column the signature requires is not in the batch at all: no row of it
    could be scored, so it is the file's fault, not a row's.

    >>> import pandas as pd
    >>> from opsloop.data.schema import ColumnSchema, Schema
    >>> missing_columns(pd.Index(["y"]), Schema((ColumnSchema("x", "float"),)))
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: input: column 'x' is missing (the signature requires it)
    """
    present = {str(name) for name in columns}
    for column in signature_columns(schema):
        if column.name not in present:
            raise InvalidArgumentError(
                f"input: column {column.name!r} is missing (the signature requires it)"
            )


def typed_from_text(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """``frame`` (text, as a CSV file is read) with the schema's columns read as their
    logical types; a value that does not read as its type stays text. Other columns are
    unchanged.

    >>> import pandas as pd
    >>> from opsloop.data.schema import ColumnSchema, Schema
    >>> schema = Schema((ColumnSchema("x", "float"), ColumnSchema("ok", "bool")))
    >>> typed_from_text(pd.DataFrame({"x": ["1.5", None, "a"], "ok": ["True", "no", None]}),
    ...                 schema).astype(object).values.tolist()
    [[1.5, True], [nan, 'no'], ['a', nan]]
    """
    typed = frame.copy()
    for column in signature_columns(schema):
        if column.name not in typed.columns:
            continue
        text = typed[column.name]
        if column.type in ("int", "float"):
            read = pd.to_numeric(text, errors="coerce")
        elif column.type == "bool":
            read = text.str.lower().map({"true": True, "false": False})
        elif column.type == "datetime":
            read = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=None)
        elif column.type == "category" and column.domain is not None:
            by_text = {str(value): value for value in column.domain}
            read = text.map(lambda value, known=by_text: known.get(value, value))
            typed[column.name] = read.astype(object)
            continue
        else:
            continue
        failed = (text.notna() & read.isna()).to_numpy()
        if failed.any():
            # Keep what did not read as its type as text: the rules name it.
            mixed = read.astype(object)
            mixed[failed] = text[failed].astype(object)
            read = mixed
        typed[column.name] = read
    return typed


def rejected_rows(frame: pd.DataFrame, schema: Schema, first_row: int = 0) -> pd.DataFrame:
    """One row per broken rule: the row number (``first_row`` + its position), the field,
    the rule and a detail quoting the value; rows in order, fields in signature order.

    >>> import pandas as pd
    >>> from opsloop.data.schema import ColumnSchema, Schema
    >>> schema = Schema((ColumnSchema("plan", "category", domain=("free", "pro")),))
    >>> rejected_rows(pd.DataFrame({"plan": ["pro", "gold"]}), schema, first_row=10).to_dict(
    ...     "records")
    [{'row': 11, 'field': 'plan', 'rule': 'unknown_category', 'detail': "'gold' is not in the domain"}]
    """  # noqa: E501
    found = []
    for order, column in enumerate(signature_columns(schema)):
        series = frame[column.name]
        for rule, rows, detail in _broken(series, column):
            for position in np.flatnonzero(rows):
                sent = series.iloc[position]
                # A null is named as it was given (NaN or null); other values as plain ones.
                value = sent if rule == "null_fraction_exceeded" else plain_value(sent)
                found.append((first_row + int(position), order, column.name, rule, detail(value)))
    found.sort(key=lambda item: (item[0], item[1]))
    return pd.DataFrame(
        [(row, field, rule, detail) for row, _, field, rule, detail in found],
        columns=list(REJECTION_COLUMNS),
    )


def _broken(series: pd.Series, column: ColumnSchema):
    """(rule, rows that break it, the detail for a value) for each rule of ``column``."""
    seen = observe(series)
    conforming = conforms(seen, column.type)
    yield (
        "type_mismatch",
        ~seen.null & ~conforming,
        lambda value: f"expected {column.type}, found {excerpt(value)}",
    )
    if column.max_null_fraction == 0:
        yield (
            "null_fraction_exceeded",
            seen.null,
            lambda value: f"the signature allows no nulls in this field; found {null_name(value)}",
        )
    numeric = column.type in ("int", "float") and seen.numbers is not None
    infinite = np.zeros(len(series), dtype=bool)
    if numeric:
        infinite = conforming & (seen.kind == FLOAT) & ~seen.finite
        if column.type == "float" and not column.allow_non_finite:
            yield "non_finite", infinite, lambda value: f"{value} where the signature allows none"
    if numeric and not column.id_like:
        low, high = column.hard_limits()
        checked = conforming & ~infinite
        beyond = np.zeros(len(series), dtype=bool)
        if low is not None:
            beyond[checked] |= seen.numbers[checked] < low
        if high is not None:
            beyond[checked] |= seen.numbers[checked] > high
        yield (
            "out_of_range",
            beyond,
            lambda value: (
                f"{excerpt(value)} is outside [{low:g}, {high:g}], the range "
                f"{column.min}..{column.max} widened by its margin"
            ),
        )
    if column.type == "category" and column.domain is not None and not column.id_like:
        yield (
            "unknown_category",
            _unknown(series, seen, column.domain, conforming),
            lambda value: f"{excerpt(value)} is not in the domain",
        )


def _unknown(series: pd.Series, seen, domain: tuple, conforming: np.ndarray) -> np.ndarray:
    unknown = np.zeros(len(series), dtype=bool)
    # One Python type at a time: pandas would match True, 1 and 1.0 as one value.
    for value_kind, python_type in ((STR, str), (INT, int), (FLOAT, float), (BOOL, bool)):
        rows = np.flatnonzero(conforming & (seen.kind == value_kind))
        if len(rows):
            allowed = [value for value in domain if type(value) is python_type]
            unknown[rows] = ~series.iloc[rows].isin(allowed).to_numpy(dtype=bool)
    return unknown
