"""The profile of one column: counts, logical type and the statistics its type calls for.

:func:`profile_column` classifies a pandas Series with
:func:`~opsloop.data.types.infer_column_type` and reads it once:

============== ===================================================================
logical type   statistics
============== ===================================================================
int, float     :class:`~opsloop.data.profile.numeric.NumericSummary` of the values
datetime       the same, of the epoch seconds (UTC; naive timestamps are read as UTC)
duration       the same, of the durations in seconds (as drift compares timedelta64)
bool           the number of ``True`` values
category,      :class:`~opsloop.data.profile.text.TextSummary`: value frequencies,
string         distinct count, lengths in characters and words
============== ===================================================================

``duration`` is the profile's own type for a ``timedelta64`` column (or an Arrow-backed
``duration[...]`` one, or an ``object`` column of ``timedelta`` values): the schema's types
(:mod:`opsloop.data.types`) have none, and without it a duration would be profiled as the
text of its values. Its statistics are seconds (``seconds`` in :meth:`ColumnProfile.to_dict`,
``mean``/``std``/``min``/``max``/``median`` in :meth:`ColumnProfile.summary_row`), and it
merges only with durations (or a side without values).

Nulls are whatever pandas calls missing (``None``, ``NaN``, ``NaT``, ``pd.NA``). In an
``object`` column, non-null values that cannot be read as the column's logical type are counted
as ``invalid_count`` and left out of the statistics (numeric strings in a numeric column are
read as numbers).

:meth:`ColumnProfile.merge` combines two profiles of the same column as
``profile_column(pd.concat([a, b]))`` would see it:

* ``int`` with ``float`` gives ``float``;
* ``category`` with ``string`` is decided again by ``infer_column_type``'s cardinality rule
  on the merged (exact) counts; a pandas ``category`` dtype stays ``category`` when both sides
  had it (the categories are assumed to agree);
* a side without any valid value says nothing about the type and takes the other's;
* other differing types raise :class:`ValueError`.

>>> import pandas as pd
>>> col = profile_column(pd.Series([1.0, None, 3.0]), "x")
>>> col.logical_type, col.count, col.null_count, col.numeric.mean
('float', 3, 1, 2.0)
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from opsloop.data.period_columns import duration_seconds, readable_column
from opsloop.data.profile.frequencies import DEFAULT_TOP, Frequencies
from opsloop.data.profile.numeric import NumericSummary
from opsloop.data.profile.options import SketchOptions
from opsloop.data.profile.text import TextSummary
from opsloop.data.types import (
    ColumnType,
    classify_by_cardinality,
    infer_column_type,
    value_kind,
)

#: A profile's logical types: the schema's, and ``duration`` (see the module docstring).
ProfileType = ColumnType | Literal["duration"]

_FAMILY = {
    "int": "numeric",
    "float": "numeric",
    "datetime": "datetime",
    "duration": "duration",
    "bool": "bool",
    "category": "text",
    "string": "text",
}
_UNITS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


@dataclass(frozen=True, eq=False)
class ColumnProfile:
    """Counts and statistics of one column.

    ``count`` is the number of rows, ``null_count`` the missing ones and ``invalid_count``
    the non-null values that do not fit ``logical_type``. Exactly one of ``numeric`` (int,
    float, datetime, duration), ``true_count`` (bool) and ``text`` (category, string) is set.

    >>> import pandas as pd
    >>> col = profile_column(pd.Series([True, False, True]), "flag")
    >>> col.true_count, col.to_dict()["true_fraction"]
    (2, 0.6666666666666666)
    """

    name: str
    logical_type: ProfileType
    count: int
    null_count: int
    invalid_count: int = 0
    numeric: NumericSummary | None = None
    true_count: int | None = None
    text: TextSummary | None = None

    @property
    def valid_count(self) -> int:
        """Rows with a usable value (neither null nor invalid)."""
        return self.count - self.null_count - self.invalid_count

    @property
    def null_fraction(self) -> float | None:
        """Share of null rows (``None`` for a column without rows)."""
        return self.null_count / self.count if self.count else None

    @property
    def frequencies(self) -> Frequencies | None:
        """Value frequencies of a category or string column."""
        return self.text.frequencies if self.text is not None else None

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """The profile of both columns' rows together (rules in the module docstring).

        >>> import pandas as pd
        >>> a = profile_column(pd.Series([1, 2]), "x")
        >>> b = profile_column(pd.Series([0.5, None]), "x")
        >>> m = a.merge(b)
        >>> m.logical_type, m.count, m.null_count, m.numeric.sum
        ('float', 4, 1, 3.5)
        """
        if self.name != other.name:
            raise ValueError(f"cannot merge column {self.name!r} with column {other.name!r}")
        a, b = self, other
        if _FAMILY[a.logical_type] != _FAMILY[b.logical_type]:
            if a.valid_count == 0:
                a = a._without_values(b.logical_type)
            elif b.valid_count == 0:
                b = b._without_values(a.logical_type)
            else:
                raise ValueError(
                    f"column {self.name!r} is {a.logical_type} in one profile and "
                    f"{b.logical_type} in the other; profiles of a column merge only when "
                    "their types agree (int with float and category with string do)"
                    + _rebuild_hint(a.logical_type, b.logical_type)
                )
        text = _merge_optional(a.text, b.text)
        true_count = None
        if a.true_count is not None or b.true_count is not None:
            true_count = (a.true_count or 0) + (b.true_count or 0)
        return ColumnProfile(
            name=self.name,
            logical_type=_merged_type(a, b, text),
            count=a.count + b.count,
            null_count=a.null_count + b.null_count,
            invalid_count=a.invalid_count + b.invalid_count,
            numeric=_merge_optional(a.numeric, b.numeric),
            true_count=true_count,
            text=text,
        )

    def _without_values(self, logical_type: ProfileType) -> ColumnProfile:
        return replace(self, logical_type=logical_type, numeric=None, true_count=None, text=None)

    def to_dict(self, top: int = DEFAULT_TOP) -> dict:
        """A JSON-safe summary (what a person or a report reads); ``top`` values listed.

        >>> import pandas as pd
        >>> d = profile_column(pd.Series(["a", "b", "a", None]), "c").to_dict()
        >>> d["type"], d["null_fraction"], d["distinct"], d["top_values"][0]["value"]
        ('category', 0.25, 2, 'a')
        """
        out = {
            "name": self.name,
            "type": self.logical_type,
            "count": self.count,
            "null_count": self.null_count,
            "null_fraction": self.null_fraction,
            "invalid_count": self.invalid_count,
        }
        if self.numeric is not None and self.logical_type == "datetime":
            out["min"] = _iso(self.numeric.minimum)
            out["max"] = _iso(self.numeric.maximum)
            out["seconds"] = self.numeric.to_dict()
        elif self.numeric is not None and self.logical_type == "duration":
            out["seconds"] = self.numeric.to_dict()  # the durations' statistics, in seconds
        elif self.numeric is not None:
            out["numeric"] = self.numeric.to_dict()
        if self.true_count is not None:
            valid = self.valid_count
            out["true_count"] = self.true_count
            out["true_fraction"] = self.true_count / valid if valid else None
        if self.text is not None:
            frequencies = self.text.frequencies
            out["distinct"] = frequencies.distinct
            out["distinct_exact"] = frequencies.is_exact
            out["distinct_bounds"] = list(frequencies.distinct_bounds())
            out["top_values"] = [v.to_dict() for v in frequencies.top(top)]
            out["top_values_max_error"] = frequencies.max_count_error
            out["characters"] = self.text.characters.to_dict()
            out["words"] = self.text.words.to_dict()
        return out

    def summary_row(self) -> dict:
        """The main statistics as one flat row (used by ``Profile.to_frame``).

        >>> import pandas as pd
        >>> profile_column(pd.Series([1, 3]), "x").summary_row()["mean"]
        2.0
        >>> infinite = pd.Series([1.0, float("inf"), -float("inf"), 2.0])
        >>> row = profile_column(infinite, "x").summary_row()
        >>> row["pos_inf_count"], row["neg_inf_count"], row["max"]
        (1, 1, 2.0)
        """
        row = {
            "type": self.logical_type,
            "count": self.count,
            "null_count": self.null_count,
            "null_fraction": self.null_fraction,
            "invalid_count": self.invalid_count,
            "distinct": None,
            "top_value": None,
            "top_count": None,
            "true_count": self.true_count,
            "mean": None,
            "std": None,
            "min": None,
            "max": None,
            "median": None,
            "mean_length": None,
            # Moments and extremes describe the finite values; the infinities are counted
            # beside them, so a table shows them as the JSON does. Last: a reader of the
            # CSV by position keeps the columns it had.
            "pos_inf_count": None,
            "neg_inf_count": None,
        }
        numeric = self.numeric
        if numeric is not None and self.logical_type == "datetime":
            row.update(
                min=_iso(numeric.minimum),
                max=_iso(numeric.maximum),
                median=_iso(numeric.quantile(0.5)),
            )
        elif numeric is not None:
            row.update(
                pos_inf_count=numeric.n_pos_inf,
                neg_inf_count=numeric.n_neg_inf,
                mean=numeric.mean,
                std=numeric.std(),
                min=numeric.minimum,
                max=numeric.maximum,
                median=numeric.quantile(0.5),
            )
        if self.text is not None:
            frequencies = self.text.frequencies
            top = frequencies.top(1)
            row.update(
                distinct=frequencies.distinct,
                top_value=top[0].value if top else None,
                top_count=top[0].count if top else None,
                mean_length=self.text.characters.mean,
            )
        return row

    def to_state(self) -> dict:
        """A lossless JSON-safe dictionary, sketches included (see :meth:`from_state`)."""
        return {
            "name": self.name,
            "logical_type": self.logical_type,
            "count": self.count,
            "null_count": self.null_count,
            "invalid_count": self.invalid_count,
            "numeric": None if self.numeric is None else self.numeric.to_state(),
            "true_count": self.true_count,
            "text": None if self.text is None else self.text.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict) -> ColumnProfile:
        """Rebuild from :meth:`to_state`.

        >>> import pandas as pd
        >>> col = profile_column(pd.Series(["x", "y"]), "c")
        >>> ColumnProfile.from_state(col.to_state()).to_dict() == col.to_dict()
        True
        """
        logical_type = state["logical_type"]
        if logical_type not in _FAMILY:
            raise ValueError(f"logical_type must be one of {sorted(_FAMILY)}, got {logical_type!r}")
        return cls(
            name=str(state["name"]),
            logical_type=logical_type,
            count=int(state["count"]),
            null_count=int(state["null_count"]),
            invalid_count=int(state["invalid_count"]),
            numeric=None
            if state["numeric"] is None
            else NumericSummary.from_state(state["numeric"]),
            true_count=None if state["true_count"] is None else int(state["true_count"]),
            text=None if state["text"] is None else TextSummary.from_state(state["text"]),
        )


def profile_column(
    series: pd.Series, name: str | None = None, options: SketchOptions | None = None
) -> ColumnProfile:
    """Profile one column (``name`` defaults to the Series' name, else ``"value"``).

    >>> import pandas as pd
    >>> col = profile_column(pd.Series(["red", "red", "blue"], name="colour"))
    >>> col.name, col.logical_type, col.frequencies.top(1)[0].count
    ('colour', 'category', 2)
    """
    if not isinstance(series, pd.Series):
        raise TypeError(f"series must be a pandas Series, got {type(series).__name__}")
    options = options or SketchOptions()
    if name is None:
        name = "value" if series.name is None else str(series.name)
    # A Period is the time it starts; a complex column is refused (:mod:`..period_columns`).
    series = readable_column(series, str(name))
    logical_type: ProfileType = "duration" if _is_duration(series) else infer_column_type(series)
    null_mask = series.isna().to_numpy(dtype=bool)
    null_count = int(np.count_nonzero(null_mask))
    # Skip the copy that boolean indexing makes when nothing is missing.
    present = series[~null_mask] if null_count else series
    base = ColumnProfile(str(name), logical_type, len(series), null_count)
    if logical_type in ("int", "float"):
        values, invalid, extra_nulls = _numeric_values(present)
        numeric = NumericSummary.of_values(values, options.quantile_k)
        return replace(
            base, null_count=null_count + extra_nulls, invalid_count=invalid, numeric=numeric
        )
    if logical_type == "datetime":
        seconds, invalid = _epoch_seconds(present)
        numeric = NumericSummary.of_values(seconds, options.quantile_k)
        return replace(base, invalid_count=invalid, numeric=numeric)
    if logical_type == "duration":
        seconds, invalid = _duration_seconds(present)
        numeric = NumericSummary.of_values(seconds, options.quantile_k)
        return replace(base, invalid_count=invalid, numeric=numeric)
    if logical_type == "bool":
        true_count, invalid = _true_count(present)
        return replace(base, invalid_count=invalid, true_count=true_count)
    text = TextSummary.of_values(
        present,
        options.quantile_k,
        options.max_exact_values,
        options.frequent_lg_size,
        options.distinct_lg_k,
    )
    return replace(base, text=text)


def _numeric_values(present: pd.Series) -> tuple[np.ndarray, int, int]:
    """Non-null values as a numpy array, with the invalid count and NaNs pandas missed."""
    dtype = present.dtype
    invalid = 0
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        values = present.to_numpy()
    elif getattr(dtype, "numpy_dtype", None) is not None and dtype.numpy_dtype.kind in "iuf":
        values = present.to_numpy(dtype=dtype.numpy_dtype)
    else:
        coerced = pd.to_numeric(present, errors="coerce")
        unread = coerced.isna().to_numpy(dtype=bool)
        invalid = int(np.count_nonzero(unread))
        values = coerced[~unread].to_numpy()
        if values.dtype.kind not in "iuf":
            values = values.astype(np.float64)
    extra_nulls = 0
    if values.dtype.kind == "f":
        nan = np.isnan(values)
        extra_nulls = int(np.count_nonzero(nan))
        if extra_nulls:
            values = values[~nan]
    return values, invalid, extra_nulls


def _epoch_seconds(present: pd.Series) -> tuple[np.ndarray, int]:
    """Seconds since 1970-01-01 UTC of non-null timestamps, with the invalid count."""
    invalid = 0
    if not isinstance(present.array, pd.arrays.DatetimeArray):
        converted = pd.to_datetime(present, errors="coerce", utc=True)
        unread = converted.isna().to_numpy(dtype=bool)
        invalid = int(np.count_nonzero(unread))
        present = converted[~unread]
    array = present.array
    per_second = _UNITS_PER_SECOND[array.unit]
    # Whole seconds and the fraction separately: each is exact or rounded once, so one
    # instant gives the same float whatever the stored resolution.
    whole, rest = np.divmod(array.asi8, per_second)
    return whole.astype(np.float64) + rest / per_second, invalid


def _rebuild_hint(a: ProfileType, b: ProfileType) -> str:
    """What to do when a duration profile meets a text one: a profile saved before
    durations were profiled as such holds the duration column as text."""
    if {_FAMILY[a], _FAMILY[b]} != {"duration", "text"}:
        return ""
    return (
        "; a profile saved before durations were profiled as type duration holds them as "
        "text: rebuild it with profile() from its data"
    )


def _is_duration_value(value: object) -> bool:
    return isinstance(value, datetime.timedelta | np.timedelta64)


def _is_duration(series: pd.Series) -> bool:
    """Whether ``series`` holds durations: a timedelta64 or Arrow duration dtype, or an
    ``object`` column most of whose present values are ``timedelta`` (pandas' ``Timedelta``
    included), as an ``object`` column of mostly datetimes is a datetime column: the
    other values are counted invalid, so halves of a column profile alike."""
    if getattr(series.dtype, "kind", None) == "m":
        return True
    if series.dtype != object:
        return False
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if kind == "timedelta":
        return True
    if kind not in ("mixed", "mixed-integer"):
        return False
    # infer_column_type's rule for object columns (the most common kind of value wins),
    # with durations as a kind of their own.
    kinds = series.dropna().map(lambda v: "duration" if _is_duration_value(v) else value_kind(v))
    counts = kinds.value_counts().to_dict()
    durations = counts.pop("duration", 0)
    return durations > max(counts.values(), default=0)


def _duration_seconds(present: pd.Series) -> tuple[np.ndarray, int]:
    """Seconds of non-null durations (pandas' ``total_seconds``, as drift reads them), with
    the invalid count: in an ``object`` column, values that are no ``timedelta``. Object
    values are read one by one with their own ``total_seconds`` (a ``np.timedelta64``
    through ``pd.Timedelta``), so a ``timedelta`` past pandas' 292 years is read too; a
    ``np.timedelta64`` past them is counted invalid."""
    if present.dtype != object:
        return duration_seconds(present), 0
    seconds = np.empty(len(present), dtype=np.float64)
    kept = 0
    for value in present:
        if isinstance(value, np.timedelta64):
            try:
                value = pd.Timedelta(value)
            except (OverflowError, ValueError):
                continue
        if isinstance(value, datetime.timedelta):
            seconds[kept] = value.total_seconds()
            kept += 1
    return seconds[:kept], len(present) - kept


def _true_count(present: pd.Series) -> tuple[int, int]:
    """Number of True among non-null booleans, with the invalid count."""
    dtype = present.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "b":
        return int(np.count_nonzero(present.to_numpy())), 0
    if pd.api.types.is_bool_dtype(dtype):
        return int(np.count_nonzero(present.to_numpy(dtype=bool))), 0
    is_bool = present.map(type).isin([bool, np.bool_]).to_numpy(dtype=bool)
    values = present[is_bool].to_numpy(dtype=bool)
    return int(np.count_nonzero(values)), int(np.count_nonzero(~is_bool))


def _merge_optional(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a.merge(b)


def _merged_type(a: ColumnProfile, b: ColumnProfile, text: TextSummary | None) -> ProfileType:
    family = _FAMILY[a.logical_type]
    if family == "numeric":
        return "int" if a.logical_type == b.logical_type == "int" else "float"
    if family != "text" or a.text is None or b.text is None:
        return a.logical_type
    if text.categorical_dtype:
        return "category"
    return _type_by_cardinality(text.frequencies)


def _type_by_cardinality(frequencies: Frequencies) -> ColumnType:
    # infer_column_type's rule for strings, applied to merged counts instead of a Series.
    if not frequencies.is_exact:
        return "string"  # more distinct values than max_exact_values >= MAX_CATEGORIES
    return classify_by_cardinality(len(frequencies.counts), frequencies.total)


def _iso(seconds: float | None) -> str | None:
    if seconds is None or not math.isfinite(seconds):
        return None
    return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat()
