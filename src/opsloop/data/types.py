"""Logical column types shared by schema, profile and drift.

One definition of "what kind of column is this" so that the schema, the profile and the drift
tests never disagree about a column. Pandas dtypes say how values are stored; the logical type
says how opsloop treats them:

========== ===============================================================
type       stored as
========== ===============================================================
bool       numpy ``bool`` or pandas ``boolean``
int        any integer dtype, nullable ``Int*`` included
float      any float dtype
datetime   ``datetime64`` (with or without a time zone)
category   pandas ``category``, or strings with few distinct values
string     free text: strings with many distinct values
========== ===============================================================

An ``object`` column is classified by its values: all numbers makes it numeric, all strings
makes it ``category`` or ``string`` by cardinality; a mix is reported as the majority type by
:func:`infer_column_type` and flagged by schema validation.

>>> import pandas as pd
>>> infer_column_type(pd.Series([1, 2, None], dtype="Int64"))
'int'
>>> infer_column_type(pd.Series(["a", "b", "a"]))
'category'
>>> import datetime
>>> infer_column_type(pd.Series([datetime.datetime(2024, 1, 1), None], dtype=object))
'datetime'
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from opsloop.data.period_columns import period_starts

ColumnType = Literal["bool", "int", "float", "datetime", "category", "string"]
NUMERIC_TYPES: frozenset[str] = frozenset({"int", "float"})

#: A string column with at most this many distinct values (and few per row) is categorical.
MAX_CATEGORIES = 100
#: ... and its distinct values may cover at most this share of its non-null rows.
MAX_DISTINCT_RATIO = 0.5


def classify_by_cardinality(n_distinct: int, n_non_null: int) -> ColumnType:
    """``category`` or ``string`` for a text column with ``n_distinct`` distinct values
    among ``n_non_null`` non-null ones: the one cardinality rule schema, profile and drift
    share.

    >>> classify_by_cardinality(3, 1000), classify_by_cardinality(900, 1000)
    ('category', 'string')
    """
    if n_non_null == 0:
        return "string"
    few = n_distinct <= MAX_CATEGORIES
    if few and (n_distinct <= MAX_DISTINCT_RATIO * n_non_null or n_distinct <= 2):
        return "category"
    return "string"


def _classify_strings(values: pd.Series) -> ColumnType:
    return classify_by_cardinality(int(values.nunique(dropna=True)), len(values))


def infer_column_type(series: pd.Series) -> ColumnType:
    """Return the logical type of ``series`` (see the module table).

    >>> import pandas as pd
    >>> infer_column_type(pd.Series([1.5, 2.0]))
    'float'
    >>> infer_column_type(pd.Series(pd.to_datetime(["2024-01-01"])))
    'datetime'
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    non_null = series.dropna()
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return _classify_strings(non_null)
    # object: decide by the values' Python types, majority wins.
    if len(non_null) == 0:
        return "string"
    kinds = non_null.map(value_kind).value_counts()
    majority = kinds.index[0]
    if majority == "str":
        return _classify_strings(non_null[non_null.map(value_kind) == "str"])
    return {"bool": "bool", "int": "int", "float": "float", "datetime": "datetime"}.get(
        majority, "string"
    )


def value_kind(value: object) -> str:
    """The kind an ``object`` column's value counts as when the column is typed (the most
    common kind wins): ``bool``, ``int``, ``float``, ``str``, ``datetime`` or ``other``.

    >>> value_kind(3), value_kind("a"), value_kind(pd.Period("2024Q1", "Q")), value_kind(1j)
    ('int', 'str', 'datetime', 'other')
    """
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, float | np.floating):
        return "float"
    if isinstance(value, str):
        return "str"
    # pd.Timestamp included; a Period is the instant it starts.
    if isinstance(value, datetime.datetime | np.datetime64 | pd.Period):
        return "datetime"
    return "other"


@dataclass(frozen=True)
class TypeEvidence:
    """What :func:`infer_column_type` reads of a column, kept so that chunks merge: the
    type the dtype alone decides (``fixed``), else the count of non-null values of each
    Python kind and the distinct strings (``None`` once more than :data:`MAX_CATEGORIES`).
    The merged evidence of a column's chunks gives the type of the whole column; the
    majority kind of an ``object`` column is decided on the merged counts (a tie goes to
    the kind seen first).

    >>> import pandas as pd
    >>> a = TypeEvidence.of(pd.Series(["x", "y"] * 30))
    >>> b = TypeEvidence.of(pd.Series([f"v{i}" for i in range(90)]))
    >>> a.column_type(), b.column_type(), a.merge(b).column_type()
    ('category', 'string', 'string')
    """

    fixed: ColumnType | None = None
    kinds: dict[str, int] = field(default_factory=dict)
    strings: frozenset | None = frozenset()

    @classmethod
    def of(cls, series: pd.Series) -> TypeEvidence:
        """The evidence of one chunk (a Period column is dated by its periods' starts,
        as schema inference reads it)."""
        series = period_starts(series)
        dtype = series.dtype
        is_text = pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
        if not (is_text or pd.api.types.is_object_dtype(dtype)) or pd.api.types.is_bool_dtype(
            dtype
        ):
            return cls(fixed=infer_column_type(series.iloc[:0]))
        non_null = series.dropna()
        if not pd.api.types.is_object_dtype(dtype):
            return cls(kinds={"str": len(non_null)}, strings=_distinct(non_null))
        kinds = non_null.map(value_kind)
        counts = {str(k): int(c) for k, c in kinds.value_counts(sort=False).items()}
        return cls(kinds=counts, strings=_distinct(non_null[kinds == "str"]))

    def merge(self, other: TypeEvidence) -> TypeEvidence:
        """The evidence of both chunks."""
        if self.fixed is not None or other.fixed is not None:
            if self.fixed != other.fixed:
                raise ValueError(
                    f"chunks of one column have different types: {self.fixed or 'values'} "
                    f"and {other.fixed or 'values'}"
                )
            return self
        kinds = dict(self.kinds)
        for kind, count in other.kinds.items():
            kinds[kind] = kinds.get(kind, 0) + count
        strings = None
        if self.strings is not None and other.strings is not None:
            strings = self.strings | other.strings
            if len(strings) > MAX_CATEGORIES:
                strings = None
        return TypeEvidence(None, kinds, strings)

    def column_type(self) -> ColumnType:
        """The logical type of the column the evidence was taken from."""
        if self.fixed is not None:
            return self.fixed
        if not self.kinds:
            return "string"
        majority = max(self.kinds, key=lambda kind: self.kinds[kind])
        if majority == "str":
            distinct = MAX_CATEGORIES + 1 if self.strings is None else len(self.strings)
            return classify_by_cardinality(distinct, self.kinds["str"])
        return {"bool": "bool", "int": "int", "float": "float", "datetime": "datetime"}.get(
            majority, "string"
        )


def _distinct(values: pd.Series) -> frozenset | None:
    distinct = values.unique()
    if len(distinct) > MAX_CATEGORIES:
        return None
    return frozenset(distinct.tolist())
