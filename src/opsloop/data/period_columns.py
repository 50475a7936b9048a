"""Columns whose values mean something other than their text to a profile or a drift test:
pandas ``Period`` columns and complex numbers.

* A **Period** column (dtype ``period[...]``, or ``object`` holding ``Period`` values) is read
  as the time each period starts (its ``start_time``), so it is profiled and tested as dates
  are: as epoch seconds, ordered in time. Periods of different frequencies then compare on
  one time axis (a month is the instant it starts).
* A **complex** column has no order, so no range, quantile or KS test applies to it; it is
  refused with an error naming the column. Split it into its real and imaginary parts
  (``frame[c].to_numpy().real``, ``.imag``), or its modulus and angle, and compare those.

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

import pandas as pd


def _kind_of_objects(series: pd.Series) -> str:
    """pandas' name for what an ``object`` column holds (``period``, ``complex``, ...)."""
    if series.dtype != object:
        return ""
    return pd.api.types.infer_dtype(series, skipna=True)


def readable_column(series: pd.Series, name: str | None = None) -> pd.Series:
    """``series`` as profiles and drift tests read it: a Period column as the times its
    periods start (``NaT`` where missing), other columns unchanged; a complex column raises
    :class:`ValueError` naming it (``name``, else the Series' name).

    >>> readable_column(pd.Series([1.5, 2.5])).tolist()
    [1.5, 2.5]
    """
    label = str(series.name) if name is None else name
    objects = _kind_of_objects(series)
    if pd.api.types.is_complex_dtype(series.dtype) or objects in ("complex", "mixed-complex"):
        raise ValueError(
            f"column {label!r} holds complex numbers, which have no order to profile or test; "
            "split it into its real and imaginary parts (or modulus and angle) and compare "
            "those"
        )
    if isinstance(series.dtype, pd.PeriodDtype):
        return series.dt.start_time
    if objects == "period":
        return pd.Series(
            [pd.NaT if pd.isna(p) else p.start_time for p in series],
            index=series.index,
            name=series.name,
            dtype="datetime64[ns]",
        )
    return series
