"""The feature columns as the selection steps read them: numbers as float64, categories as
integer codes, each with its null count, prepared once per fit without copying the frame.

A float64 column of the input is used in place (a view); other numeric columns are converted
one at a time, so preparing a wide frame costs little more memory than its non-float64
columns. Logical types come from :func:`opsloop.data.types.infer_column_type`, grouped into
the three kinds the steps know:

* ``numeric``: int, float and bool columns (bool as 0/1), and datetimes (seconds since the
  epoch, so that a timestamp copied into two columns is caught as redundant), including
  text columns whose every value is an ISO 8601 date or timestamp (``2024-03-01``,
  ``2024-03-01 12:30``, ``2024-03-01T12:30:00Z``), as a CSV file gives them;
* ``categorical``: pandas categories and strings with few distinct values;
* ``text``: strings with many distinct values. Only the null and near-zero-variance steps
  read them; the funnel reports them as not judged by the steps that read the target.

An ``object`` column that mixes kinds of values (numbers and strings, say) is refused with an
error naming it: its statistics would depend on how each value happened to be stored.

>>> import pandas as pd
>>> frame = pd.DataFrame({"x": [1.0, None, 3.0], "c": pd.Categorical(["a", "b", None])})
>>> columns = prepare_columns(frame)
>>> columns.kinds, columns.n_null
({'x': 'numeric', 'c': 'categorical'}, {'x': 1, 'c': 1})
>>> columns.codes["c"].tolist(), columns.levels["c"]
([0, 1, -1], 2)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opsloop.data.types import infer_column_type

NUMERIC, CATEGORICAL, TEXT = "numeric", "categorical", "text"
KIND_OF_TYPE = {
    "bool": NUMERIC,
    "int": NUMERIC,
    "float": NUMERIC,
    "datetime": NUMERIC,
    "category": CATEGORICAL,
    "string": TEXT,
}
# What pandas.api.types.infer_dtype says of an object column whose values are of one kind
# (or of ints and floats together, which are numbers alike).
_UNIFORM_OBJECT = {
    "string",
    "integer",
    "floating",
    "mixed-integer-float",
    "boolean",
    "datetime",
    "datetime64",
    "date",
    "empty",
    "decimal",
}


@dataclass
class FeatureColumns:
    """Prepared columns: ``kinds``, ``n_null``, float64 ``values`` for numeric columns and
    integer ``codes`` (``-1`` for missing) with ``levels`` for categorical and text ones.

    >>> import pandas as pd
    >>> prepare_columns(pd.DataFrame({"t": ["x", "y", None]})).levels
    {'t': 2}
    """

    n_rows: int
    names: list[str]
    kinds: dict[str, str]
    n_null: dict[str, int]
    values: dict[str, np.ndarray] = field(default_factory=dict)
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)

    def of_kind(self, kind: str, among: Iterable[str]) -> list[str]:
        """The names in ``among`` whose kind is ``kind``, in the order given.

        >>> import pandas as pd
        >>> c = prepare_columns(pd.DataFrame({"x": [1.0], "c": pd.Categorical(["a"])}))
        >>> c.of_kind("categorical", ["x", "c"])
        ['c']
        """
        return [name for name in among if self.kinds[name] == kind]


def check_readable_dtype(name: str, dtype: object) -> None:
    """Raise ``TypeError`` for a dtype feature selection cannot read (complex numbers,
    durations, intervals, periods), naming the column.

    >>> import numpy as np
    >>> check_readable_dtype("amount", np.dtype("float64"))
    >>> check_readable_dtype("wait", np.dtype("timedelta64[ns]"))
    Traceback (most recent call last):
    TypeError: column 'wait' has dtype timedelta64[ns], which feature selection cannot read; ...
    """
    if (
        pd.api.types.is_complex_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.IntervalDtype | pd.PeriodDtype)
    ):
        raise TypeError(
            f"column {name!r} has dtype {dtype}, which feature selection cannot read; "
            "convert it to numbers or labels first"
        )


def check_uniform_values(name: str, series: pd.Series) -> None:
    """Raise ``TypeError`` when an ``object`` column mixes kinds of values.

    >>> import pandas as pd
    >>> check_uniform_values("id", pd.Series([1, "a", 2.5, None], dtype=object))
    Traceback (most recent call last):
    ...
    TypeError: column 'id' mixes value types (float: 1, int: 1, str: 1); cast it to one type ...
    """
    if not pd.api.types.is_object_dtype(series.dtype):
        return
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in _UNIFORM_OBJECT:
        return
    found = series.dropna().map(lambda v: type(v).__name__).value_counts().sort_index()
    listed = ", ".join(f"{kind}: {count}" for kind, count in found.items())
    raise TypeError(
        f"column {name!r} mixes value types ({listed}); cast it to one type before selection "
        "(numbers with pd.to_numeric, labels with .astype(str))"
    )


#: An ISO 8601 date, optionally with a time and a zone: what a date column of a CSV holds.
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?")


def is_date_text(series: pd.Series) -> bool:
    """Whether every non-missing value of a text column is an ISO 8601 date (and parses).

    >>> import pandas as pd
    >>> is_date_text(pd.Series(["2024-03-01", None, "2024-03-02 10:00"]))
    True
    >>> is_date_text(pd.Series(["2024-03-01", "soon"]))
    False
    """
    values = series.dropna()
    if values.empty or not all(isinstance(v, str) for v in values):
        return False
    if not values.astype(str).str.fullmatch(ISO_DATE).all():
        return False
    try:
        pd.to_datetime(values, format="ISO8601", utc=True)
    except (ValueError, OverflowError):
        return False
    return True


def float_values(series: pd.Series, logical: str) -> np.ndarray:
    """A numeric column of logical type ``logical`` as float64 (NaN for missing): bool as
    0/1, datetimes (and ISO 8601 text) as seconds since the epoch.

    >>> import pandas as pd
    >>> float_values(pd.Series([True, None], dtype="boolean"), "bool").tolist()
    [1.0, nan]
    """
    if logical == "datetime":
        text = pd.api.types.is_string_dtype(series.dtype) or pd.api.types.is_object_dtype(
            series.dtype
        )
        stamps = (
            pd.to_datetime(series, format="ISO8601", utc=True) if text else pd.to_datetime(series)
        )
        if getattr(stamps.dtype, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        nanoseconds = stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)
        seconds = nanoseconds / 1e9
        seconds[stamps.isna().to_numpy()] = np.nan
        return seconds
    if series.dtype == np.float64:
        return series.to_numpy()
    if pd.api.types.is_object_dtype(series.dtype):
        return pd.to_numeric(series).to_numpy(dtype=np.float64, na_value=np.nan)
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def level_codes(series: pd.Series) -> tuple[np.ndarray, int]:
    """A categorical or text column as integer codes (``-1`` for missing) and its number of
    levels (a pandas categorical's categories, used or not; else its distinct values).

    >>> import pandas as pd
    >>> codes, levels = level_codes(pd.Series(["b", None, "a", "b"]))
    >>> codes.tolist(), levels
    ([0, -1, 1, 0], 2)
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy(), len(series.cat.categories)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes, len(uniques)


def prepare_columns(frame: pd.DataFrame, names: Iterable[str] | None = None) -> FeatureColumns:
    """Prepare ``names`` (default: every column) of ``frame`` for the selection steps.

    Raises ``TypeError`` for a column that mixes value types or whose dtype no step can read
    (complex numbers, intervals, periods, timedeltas), and ``ValueError`` for a numeric column
    holding infinities, naming the column.

    >>> import pandas as pd
    >>> prepare_columns(pd.DataFrame({"d": pd.to_datetime(["1970-01-02", None])})).values["d"]
    array([86400.,    nan])
    """
    names = [str(n) for n in (frame.columns if names is None else names)]
    prepared = FeatureColumns(n_rows=len(frame), names=names, kinds={}, n_null={})
    for name in names:
        series = frame[name]
        check_readable_dtype(name, series.dtype)
        check_uniform_values(name, series)
        logical = infer_column_type(series)
        if logical in ("category", "string") and is_date_text(series):
            logical = "datetime"
        kind = KIND_OF_TYPE[logical]
        prepared.kinds[name] = kind
        if kind == NUMERIC:
            values = float_values(series, logical)
            n_missing = int(np.count_nonzero(np.isnan(values)))
            n_infinite = values.size - n_missing - int(np.count_nonzero(np.isfinite(values)))
            if n_infinite:
                raise ValueError(
                    f"column {name!r} has {n_infinite} infinite values; replace them with a "
                    "number or NaN before selection"
                )
            prepared.values[name] = values
            prepared.n_null[name] = n_missing
        else:
            codes, n_levels = level_codes(series)
            prepared.codes[name] = codes
            prepared.levels[name] = n_levels
            prepared.n_null[name] = int(np.count_nonzero(codes < 0))
    return prepared
