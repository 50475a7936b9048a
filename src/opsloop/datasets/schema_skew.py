"""Break a frame's schema the way upstream systems do, to test that validation catches it.

:func:`inject_schema_skew` returns a changed copy of a frame with one kind of skew in one
column; the input is never modified. Kinds:

===================== =========================================================================
kind                  what changes
===================== =========================================================================
``string_in_numeric`` some cells of a numeric column become text (``"N/A"``, ``"unknown"``,
                      ``"?"``, ``"#VALUE!"``); the column becomes ``object``
``new_category``      some cells of a categorical column take a value never seen before
                      (``value``, else ``"<column>_new"``), added to the categories
``missing_column``    the column is dropped (``fraction`` is ignored)
``out_of_range``      some cells of a numeric column move outside the column's observed
                      ``[min, max]``, half above and half below, by 10% to 100% of its span;
                      integer columns stay integer
``null_burst``        a contiguous run of rows is blanked (integers become ``Int64``, booleans
                      ``boolean``)
===================== =========================================================================

Row-level kinds change exactly ``max(1, round(fraction * len(df)))`` rows, chosen at random
(``null_burst``: a random contiguous run of that length).

>>> import pandas as pd
>>> df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
>>> skewed = inject_schema_skew(df, "string_in_numeric", "x", fraction=0.5, seed=0)
>>> skewed["x"].map(type).value_counts().to_dict()
{<class 'float'>: 2, <class 'str'>: 2}
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from opsloop.data.types import NUMERIC_TYPES, infer_column_type

SkewKind = Literal[
    "string_in_numeric", "new_category", "missing_column", "out_of_range", "null_burst"
]
SKEW_KINDS: tuple[str, ...] = (
    "string_in_numeric",
    "new_category",
    "missing_column",
    "out_of_range",
    "null_burst",
)
#: What broken exports put in numeric fields.
TEXT_TOKENS: tuple[str, ...] = ("N/A", "unknown", "?", "#VALUE!")


def _affected_rows(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    k = max(1, round(fraction * n))
    return np.sort(rng.choice(n, size=k, replace=False))


def _numeric(series: pd.Series, kind: str, column: str) -> None:
    logical = infer_column_type(series)
    if logical not in NUMERIC_TYPES:
        raise TypeError(f"{kind} needs a numeric column; column {column!r} is {logical}")


def _string_in_numeric(series: pd.Series, rows: np.ndarray, rng) -> pd.Series:
    values = series.astype(object).to_numpy(copy=True)
    values[rows] = np.array(TEXT_TOKENS, dtype=object)[
        rng.integers(len(TEXT_TOKENS), size=rows.size)
    ]
    return pd.Series(values, index=series.index, name=series.name, dtype=object)


def _new_category(series: pd.Series, rows: np.ndarray, value, column: str) -> pd.Series:
    if isinstance(series.dtype, pd.CategoricalDtype):
        known = set(series.cat.categories)
    else:
        logical = infer_column_type(series)
        if logical != "category":
            raise TypeError(
                f"new_category needs a categorical column; column {column!r} is {logical}"
            )
        known = set(series.dropna().unique())
    if value is None:
        value = f"{column}_new"
        while value in known:
            value += "_"
    elif value in known:
        raise ValueError(f"value {value!r} is already a value of column {column!r}")
    if isinstance(series.dtype, pd.CategoricalDtype):
        out = series.cat.add_categories([value])
    else:
        out = series.copy()
    out.iloc[rows] = value
    return out


def _out_of_range(series: pd.Series, rows: np.ndarray, rng) -> pd.Series:
    present = series.dropna().to_numpy(dtype=float)
    if present.size == 0:
        raise ValueError(f"out_of_range needs observed values; column {series.name!r} is empty")
    low, high = float(present.min()), float(present.max())
    span = high - low if high > low else max(abs(high), 1.0)
    distance = span * (0.1 + 0.9 * rng.random(rows.size))
    above = rng.permutation(rows.size) < (rows.size + 1) // 2
    moved = np.where(above, high + distance, low - distance)
    if infer_column_type(series) == "int":
        moved = np.where(above, np.ceil(moved), np.floor(moved)).astype(np.int64)
    out = series.copy()
    out.iloc[rows] = moved
    return out


def _null_burst(series: pd.Series, k: int, rng) -> pd.Series:
    n = len(series)
    first = int(rng.integers(n - k + 1))
    if pd.api.types.is_bool_dtype(series.dtype):
        out = series.astype("boolean")
    elif isinstance(series.dtype, np.dtype) and series.dtype.kind in "iu":
        # numpy integers cannot hold a missing value; the nullable twin of the same width can
        name = series.dtype.name
        out = series.astype("UInt" + name[4:] if name.startswith("uint") else "Int" + name[3:])
    else:
        out = series.copy()
    out.iloc[first : first + k] = None
    return out


def inject_schema_skew(
    df: pd.DataFrame,
    kind: SkewKind,
    column: str,
    fraction: float = 0.01,
    seed: int = 0,
    *,
    value: object = None,
) -> pd.DataFrame:
    """A copy of ``df`` with schema skew ``kind`` in ``column`` (see the module table).

    ``fraction`` in (0, 1] sets how many rows change; ``value`` names the new category for
    ``new_category``. Raises ``ValueError`` for an unknown kind or column and ``TypeError``
    when the column's type does not fit the kind.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"c": pd.Categorical(["a", "b", "a", "b"])})
    >>> skewed = inject_schema_skew(df, "new_category", "c", fraction=0.25, value="z")
    >>> list(skewed["c"].cat.categories), int((skewed["c"] == "z").sum())
    (['a', 'b', 'z'], 1)
    >>> list(df["c"].cat.categories)
    ['a', 'b']
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if kind not in SKEW_KINDS:
        raise ValueError(f"kind must be one of {SKEW_KINDS}, got {kind!r}")
    if column not in df.columns:
        raise ValueError(f"df has no column {column!r}")
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float | np.number)
        or not 0.0 < float(fraction) <= 1.0
    ):
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if kind == "missing_column":
        return df.drop(columns=[column])
    n = len(df)
    if n == 0:
        raise ValueError(f"{kind} needs at least one row; df is empty")
    rng = np.random.default_rng(seed)
    series = df[column]
    if kind == "string_in_numeric":
        _numeric(series, kind, column)
        new = _string_in_numeric(series, _affected_rows(n, fraction, rng), rng)
    elif kind == "new_category":
        new = _new_category(series, _affected_rows(n, fraction, rng), value, column)
    elif kind == "out_of_range":
        _numeric(series, kind, column)
        new = _out_of_range(series, _affected_rows(n, fraction, rng), rng)
    else:
        new = _null_burst(series, max(1, round(fraction * n)), rng)
    out = df.copy(deep=False)
    out[column] = new
    return out
