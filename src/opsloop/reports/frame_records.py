"""DataFrames as JSON-safe records: what the REST API answers and ``--json`` prints.

>>> import pandas as pd
>>> frame_records(pd.DataFrame({"n": [1, 2]}))
[{'n': 1}, {'n': 2}]
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _missing(value: object) -> bool:
    return (
        value is None
        or value is pd.NaT
        or value is pd.NA
        or (isinstance(value, float) and math.isnan(value))
    )


def frame_records(frame: pd.DataFrame) -> list[dict]:
    """A DataFrame as JSON-safe records (NaN and NaT as null, times in ms since the epoch).

    Floats keep every digit (``DataFrame.to_json`` would round them to 10).

    >>> frame_records(pd.DataFrame({"a": [1.5, float("nan")],
    ...                             "t": pd.to_datetime([1000, None], unit="ms", utc=True)}))
    [{'a': 1.5, 't': 1000}, {'a': None, 't': None}]
    >>> frame_records(pd.DataFrame({"m": [{"auc": 0.12345678901234566}]}))[0]["m"]["auc"]
    0.12345678901234566
    """
    columns = []
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series):
            milliseconds = series.to_numpy("datetime64[ms]")
            values = [
                None if missing else int(ms)
                for ms, missing in zip(
                    milliseconds.astype(np.int64), np.isnat(milliseconds), strict=True
                )
            ]
        else:
            values = [None if _missing(value) else value for value in series.tolist()]
        columns.append(values)
    names = [str(name) for name in frame.columns]
    records = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    if not columns:
        records = [{} for _ in range(len(frame))]
    return json.loads(json.dumps(records, default=_plain, allow_nan=False))
