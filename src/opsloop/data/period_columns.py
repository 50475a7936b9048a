"""Columns whose values mean something other than their text to a profile or a drift test:
pandas ``Period`` columns and complex numbers.

* A **Period** column (dtype ``period[...]``, or ``object`` holding ``Period`` values) is read
  as the instant each period starts, so it is profiled and tested as dates are: as epoch
  seconds, ordered in time. The start is taken from the period's ordinal at a frequency of
  seconds (``datetime64[s]``; milliseconds, microseconds or nanoseconds for periods that
  fine, so nothing below the second is lost), never as a nanosecond timestamp, so a period past 2262 (the
  year 3000) is read as well. An ``object`` column holding periods of several frequencies
  (months beside quarters) is read the same way, each period as the second it starts: a
  quarter and the month it begins with are then the same instant, and the column compares
  on one time axis rather than by frequency.
* A **complex** column has no order, so no range, quantile or KS test applies to it. A
  profile refuses it with an error naming the column (a profile has an entry for every
  column, and merging treats a column one profile lacks as nulls, so leaving it out would
  turn it into nulls); a drift comparison leaves it out, with the reason in the result's
  ``skipped`` and a warning (:func:`holds_complex` finds it). Split it into its real and
  imaginary parts (``frame[c].to_numpy().real``, ``.imag``), or its modulus and angle, and
  profile or compare those.

>>> import pandas as pd
>>> months = pd.Series(pd.period_range("2024-01", periods=2, freq="M"), name="month")
>>> readable_column(months).astype(str).tolist()
['2024-01-01', '2024-02-01']
>>> readable_column(pd.Series([1 + 2j], name="z"))
Traceback (most recent call last):
...
ValueError: column 'z' holds complex numbers, which have no order to profile or test; split it into its real and imaginary parts (or modulus and angle) and compare those
"""  # noqa: E501 - a doctest's expected output is one line

from __future__ import annotations

import numpy as np
import pandas as pd

# The int64 numpy reads as NaT in a datetime64 array.
_NAT = np.iinfo(np.int64).min


def _kind_of_objects(series: pd.Series) -> str:
    """pandas' name for what an ``object`` column holds (``period``, ``complex``, ...)."""
    if series.dtype != object:
        return ""
    return pd.api.types.infer_dtype(series, skipna=True)


def _all_periods(series: pd.Series) -> bool:
    """Whether every present value is a ``Period`` (pandas calls periods of several
    frequencies ``mixed``)."""
    return all(isinstance(v, pd.Period) for v in series.dropna())


#: Why a complex column is not compared (a drift result's ``skipped`` reason).
COMPLEX_REASON = (
    "holds complex numbers, which have no order to test; split it into its real and "
    "imaginary parts (or modulus and angle) and compare those"
)


def holds_complex(series_or_dtype) -> bool:
    """Whether a column (a Series, or only its dtype, as a Dask frame's ``dtypes`` give
    it) holds complex numbers: a complex dtype, or an ``object`` column of them.

    >>> import numpy as np
    >>> holds_complex(pd.Series([1 + 2j])), holds_complex(pd.Series([1.5]))
    (True, False)
    >>> holds_complex(pd.Series([1j, None], dtype=object)), holds_complex(np.dtype("complex64"))
    (True, True)
    """
    if not isinstance(series_or_dtype, pd.Series):
        return pd.api.types.is_complex_dtype(series_or_dtype)
    if pd.api.types.is_complex_dtype(series_or_dtype.dtype):
        return True
    return _kind_of_objects(series_or_dtype) in ("complex", "mixed-complex")


def readable_column(series: pd.Series, name: str | None = None) -> pd.Series:
    """``series`` as profiles and drift tests read it: a Period column as the instants its
    periods start (``datetime64[s]``, or ``ms``/``us``/``ns`` for periods that fine; ``NaT``
    where missing), other columns unchanged; a
    complex column raises :class:`ValueError` naming it (``name``, else the Series' name).

    >>> readable_column(pd.Series([1.5, 2.5])).tolist()
    [1.5, 2.5]
    >>> far = pd.Series(pd.period_range("3000-01", periods=2, freq="M"))
    >>> readable_column(far).astype(str).tolist()
    ['3000-01-01', '3000-02-01']
    >>> millis = pd.Series(pd.period_range("2024-03-05 10:11:12.250", periods=2, freq="ms"))
    >>> readable_column(millis).astype(str).tolist()
    ['2024-03-05 10:11:12.250', '2024-03-05 10:11:12.251']
    """
    label = str(series.name) if name is None else name
    if holds_complex(series):
        raise ValueError(
            f"column {label!r} holds complex numbers, which have no order to profile or test; "
            "split it into its real and imaginary parts (or modulus and angle) and compare "
            "those"
        )
    return period_starts(series)


def holds_periods(series: pd.Series) -> bool:
    """Whether ``series`` is a Period column (a ``period`` dtype, or an ``object`` column
    whose present values are all ``Period``): the columns :func:`period_starts` reads as
    dates.

    >>> holds_periods(pd.Series(pd.period_range("2024Q1", periods=2, freq="Q")))
    True
    >>> holds_periods(pd.Series(["2024Q1"])), holds_periods(pd.Series([pd.Period("2024Q1", "Q")]))
    (False, True)
    """
    if isinstance(series.dtype, pd.PeriodDtype):
        return True
    objects = _kind_of_objects(series)
    return objects == "period" or (objects == "mixed" and _all_periods(series))


def period_starts(series: pd.Series) -> pd.Series:
    """A Period column as the instants its periods start (as :func:`readable_column` reads
    it), any other column unchanged, complex ones included: what schema inference and
    validation judge, so that a Period column is a ``datetime`` column to them as to a
    profile.

    >>> quarters = pd.Series([pd.Period("2024Q2", "Q"), None], dtype=object)
    >>> starts = period_starts(quarters)
    >>> str(starts.dtype), str(starts[0]), starts.isna().tolist()
    ('datetime64[s]', '2024-04-01 00:00:00', [False, True])
    """
    if not holds_periods(series):
        return series
    if isinstance(series.dtype, pd.PeriodDtype):
        unit = _unit_of(series.dtype.freq)
        starts = series.array.asfreq(unit, how="start").asi8  # NaT stays NaT's int64
    else:
        present = [p for p in series if not pd.isna(p)]
        unit = min((_unit_of(p.freq) for p in present), key=_UNITS.index, default="s")
        starts = np.array(
            [_NAT if pd.isna(p) else p.asfreq(unit, how="start").ordinal for p in series],
            dtype=np.int64,
        )
    return pd.Series(starts.view(f"datetime64[{unit}]"), index=series.index, name=series.name)


# numpy's datetime units a period start is read in, finest first: a period of a second or
# longer starts on a whole second, and a finer one keeps its own resolution.
_UNITS = ("ns", "us", "ms", "s")


def _unit_of(freq: pd.offsets.BaseOffset) -> str:
    """The unit a period of ``freq`` starts in exactly: ``ms``/``us``/``ns`` for those
    frequencies (and their multiples), else seconds.

    >>> _unit_of(pd.Period("2024-03", freq="M").freq), _unit_of(pd.offsets.Milli(5))
    ('s', 'ms')
    """
    name = freq.base.name
    return name if name in _UNITS else "s"


def duration_seconds(series: pd.Series) -> np.ndarray:
    """The seconds of a duration column (``timedelta64``, or Arrow-backed ``duration[...]``)
    as float64, NaN where missing: pandas' ``total_seconds``, read from the stored integers,
    so an Arrow duration longer than 2**53 of its unit (104 days in nanoseconds), which
    Arrow's own conversion refuses, is read too. Profiles and drift read durations so.

    >>> spans = pd.Series(pd.to_timedelta([1.5, None, 400 * 86_400], unit="s"))
    >>> duration_seconds(spans.astype("duration[ns][pyarrow]")).tolist()
    [1.5, nan, 34560000.0]
    """
    if not isinstance(series.array, pd.arrays.TimedeltaArray):
        unit = getattr(getattr(series.dtype, "pyarrow_dtype", None), "unit", "ns")
        series = series.astype(f"timedelta64[{unit}]")
    return series.dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
