"""What each value of a column is, whatever pandas dtype stores it.

Schema inference and validation both need, per row, "is it null, and if not, what kind of
Python value is it": a ``float64`` column, a nullable ``Int64`` column, a ``category`` column
and an ``object`` column holding ``1``, ``"abc"`` and ``None`` must all be judged by one rule.
:func:`observe` reduces any column to three aligned arrays (null mask, kind code, numeric value)
and :func:`conforms` applies the logical type's rule to them.

Numeric, boolean, datetime and string dtypes are classified by their dtype alone (one
``np.full``); only ``object`` columns are classified by value, and then by each distinct Python
*type* (``pd.factorize`` over the types), never by a Python branch per row.

>>> import pandas as pd
>>> seen = observe(pd.Series([1, "abc", None, 2.5], dtype=object))
>>> [KIND_NAMES[k] for k in seen.kind]
['int', 'str', 'null', 'float']
>>> conforms(seen, "int").tolist()
[True, False, False, False]
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

NULL, BOOL, INT, FLOAT, STR, DATETIME, OTHER = range(7)
#: Name of each kind code, indexed by the code.
KIND_NAMES: tuple[str, ...] = ("null", "bool", "int", "float", "str", "datetime", "other")

# Kinds a value may have and still be of the logical type. An int column also takes floats
# with no fractional part (pandas turns an int column with a missing value into float64); a
# float column takes ints (a batch of whole numbers reads as int64). A category holds labels,
# which a pandas Categorical may make of strings, numbers or booleans; whether a label is
# known is the domain's check, not the type's.
_ACCEPTED: dict[str, frozenset[int]] = {
    "bool": frozenset({BOOL}),
    "int": frozenset({INT, FLOAT}),
    "float": frozenset({INT, FLOAT}),
    "datetime": frozenset({DATETIME}),
    "category": frozenset({STR, INT, FLOAT, BOOL}),
    "string": frozenset({STR}),
}


@dataclass(frozen=True)
class ObservedColumn:
    """A column reduced to per-row arrays of equal length.

    ``null`` marks missing values (``None``, ``NaN``, ``pd.NA``, ``NaT``); ``kind`` holds a
    kind code (:data:`KIND_NAMES`); ``numbers`` holds the numeric value of ``int``/``float``
    rows (anything on other rows), or is ``None`` when the column has no numeric row.

    >>> import pandas as pd
    >>> observe(pd.Series([1, None], dtype="Int64")).null.tolist()
    [False, True]
    """

    null: np.ndarray
    kind: np.ndarray
    numbers: np.ndarray | None

    @property
    def finite(self) -> np.ndarray:
        """Rows whose number is finite (``False`` where there is no number).

        >>> import numpy as np, pandas as pd
        >>> observe(pd.Series([1.0, np.inf, np.nan])).finite.tolist()
        [True, False, False]
        """
        numeric = (self.kind == INT) | (self.kind == FLOAT)
        if self.numbers is None or self.numbers.dtype.kind in "iu":
            return numeric
        return numeric & np.isfinite(self.numbers)


def observe(series: pd.Series) -> ObservedColumn:
    """Classify every row of ``series`` (see the module docstring).

    >>> import pandas as pd
    >>> seen = observe(pd.Series(["a", None], dtype="string[pyarrow]"))
    >>> [KIND_NAMES[k] for k in seen.kind]
    ['str', 'null']
    """
    dtype = series.dtype
    n = len(series)
    if isinstance(dtype, pd.CategoricalDtype):
        return _observe_categorical(series)
    null = series.isna().to_numpy(dtype=bool)
    if pd.api.types.is_bool_dtype(dtype):
        return _constant(BOOL, null, None)
    if pd.api.types.is_integer_dtype(dtype):
        numpy_dtype = getattr(dtype, "numpy_dtype", dtype)
        return _constant(INT, null, series.to_numpy(dtype=numpy_dtype, na_value=0))
    if pd.api.types.is_float_dtype(dtype):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        # A nullable float array can hold NaN apart from NA; NaN is a null all the same.
        return _constant(FLOAT, null | np.isnan(numbers), numbers)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return _constant(DATETIME, null, None)
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return _constant(STR, null, None)
    if not pd.api.types.is_object_dtype(dtype):
        # timedelta, period, interval, complex...: none of the logical types.
        return _constant(OTHER, null, None)
    values = series.to_numpy(dtype=object)
    kind = _object_kinds(values, null)
    numeric = (kind == INT) | (kind == FLOAT)
    numbers = None
    if numeric.any():
        numbers = np.zeros(n, dtype=np.float64)
        numbers[numeric] = _to_float(values[numeric])
    return ObservedColumn(null, kind, numbers)


def conforms(observed: ObservedColumn, column_type: str) -> np.ndarray:
    """Rows holding a non-null value of logical type ``column_type``.

    >>> import numpy as np, pandas as pd
    >>> conforms(observe(pd.Series([1.0, 1.5, np.inf, np.nan])), "int").tolist()
    [True, False, False, False]
    """
    kind = observed.kind
    ok = np.isin(kind, sorted(_ACCEPTED[column_type]))
    if column_type == "int" and observed.numbers is not None:
        ok &= ~((kind == FLOAT) & ~_integral(observed.numbers))
    return ok


def mismatch_labels(observed: ObservedColumn, column_type: str, rows: np.ndarray) -> np.ndarray:
    """A short name for what each of ``rows`` holds instead of ``column_type``.

    Floats rejected by an int column are split into "float with a fraction" and
    "non-finite float", which say more than "float".

    >>> import numpy as np, pandas as pd
    >>> seen = observe(pd.Series([1.5, np.inf]))
    >>> mismatch_labels(seen, "int", np.array([0, 1])).tolist()
    ['float with a fraction', 'non-finite float']
    """
    labels = np.asarray(KIND_NAMES, dtype=object)[observed.kind[rows]]
    if column_type == "int" and observed.numbers is not None:
        numbers = observed.numbers[rows]
        is_float = observed.kind[rows] == FLOAT
        finite = np.isfinite(numbers) if numbers.dtype.kind == "f" else np.ones(len(rows), bool)
        labels[is_float & finite] = "float with a fraction"
        labels[is_float & ~finite] = "non-finite float"
    return labels


def _constant(kind: int, null: np.ndarray, numbers: np.ndarray | None) -> ObservedColumn:
    kinds = np.full(len(null), kind, dtype=np.int8)
    kinds[null] = NULL
    return ObservedColumn(null, kinds, numbers)


def _observe_categorical(series: pd.Series) -> ObservedColumn:
    # Classify the few categories once, then spread the result over the rows by code.
    categories = observe(pd.Series(series.cat.categories, dtype=series.cat.categories.dtype))
    codes = series.cat.codes.to_numpy()
    null = codes < 0
    safe = np.where(null, 0, codes)
    if len(categories.kind) == 0:
        return ObservedColumn(null, np.full(len(codes), NULL, dtype=np.int8), None)
    kind = np.where(null, NULL, categories.kind[safe]).astype(np.int8)
    numbers = None if categories.numbers is None else categories.numbers[safe]
    return ObservedColumn(null, kind, numbers)


_FAST_OBJECT_KINDS = {"string": STR, "integer": INT, "floating": FLOAT, "boolean": BOOL}


def _object_kinds(values: np.ndarray, null: np.ndarray) -> np.ndarray:
    fast = _FAST_OBJECT_KINDS.get(pd.api.types.infer_dtype(values, skipna=True))
    if fast is not None:
        kind = np.full(len(values), fast, dtype=np.int8)
    else:
        codes, types = pd.factorize(pd.Series(values, dtype=object).map(type))
        table = np.array([_type_kind(t) for t in types] or [OTHER], dtype=np.int8)
        kind = table[codes]
    kind[null] = NULL
    return kind


def _type_kind(value_type: type) -> int:
    # bool before int: bool is a subclass of int in Python.
    if issubclass(value_type, bool | np.bool_):
        return BOOL
    if issubclass(value_type, int | np.integer):
        return INT
    if issubclass(value_type, float | np.floating):
        return FLOAT
    if issubclass(value_type, str):
        return STR
    # A Period is the instant it starts (:mod:`opsloop.data.period_columns`): a date.
    if issubclass(value_type, dt.datetime | np.datetime64 | pd.Period):
        return DATETIME
    return OTHER


def _to_float(values: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except OverflowError:
        # Python ints beyond float range: only then go value by value, saturating to ±inf so
        # that a range check still sees them as too large.
        return np.fromiter((_saturating_float(v) for v in values), np.float64, len(values))


def _saturating_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


def _integral(numbers: np.ndarray) -> np.ndarray:
    if numbers.dtype.kind in "iu":
        return np.ones(len(numbers), dtype=bool)
    finite = np.isfinite(numbers)
    whole = np.zeros(len(numbers), dtype=bool)
    whole[finite] = numbers[finite] == np.floor(numbers[finite])
    return whole


def plain_value(value: object) -> object:
    """``value`` as plain Python, for examples and domains (nulls become ``None``).

    >>> import numpy as np, pandas as pd
    >>> [plain_value(v) for v in (np.int64(3), np.nan, pd.NA, pd.Timestamp("2024-01-02"))]
    [3, None, None, '2024-01-02T00:00:00']
    """
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)
