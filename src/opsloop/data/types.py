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
from typing import Literal

import numpy as np
import pandas as pd

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
    kinds = non_null.map(_value_kind).value_counts()
    majority = kinds.index[0]
    if majority == "str":
        return _classify_strings(non_null[non_null.map(_value_kind) == "str"])
    return {"bool": "bool", "int": "int", "float": "float", "datetime": "datetime"}.get(
        majority, "string"
    )


def _value_kind(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, float | np.floating):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, datetime.datetime | np.datetime64):  # pd.Timestamp included
        return "datetime"
    return "other"
