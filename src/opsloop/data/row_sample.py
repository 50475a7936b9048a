"""A bounded, seeded sample of raw rows that merges across workers exactly.

Each row gets a key, a 64-bit hash of its row id under the seed, and the sample keeps the
``size`` rows with the smallest keys (bottom-k sampling). The keys do not depend on which
worker saw a row or in what order, so the sample of two workers' samples merged is the
sample one worker would have kept of all the rows: a uniform sample without replacement,
the same on every run with the same seed.

>>> import pandas as pd
>>> rows = pd.DataFrame({"x": range(10)})
>>> ids = [f"r{i}" for i in range(10)]
>>> whole = RowSample.of(rows, ids, size=4, seed=1)
>>> halves = RowSample.of(rows[:5], ids[:5], 4, 1).merge(RowSample.of(rows[5:], ids[5:], 4, 1))
>>> halves.rows["x"].tolist() == whole.rows["x"].tolist(), len(whole)
(True, 4)
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

KEY_COLUMN = "_sample_key"


def row_keys(row_ids: Sequence[str], seed: int) -> np.ndarray:
    """The sampling keys (uint64) of ``row_ids`` under ``seed``.

    >>> bool(row_keys(["a"], 0)[0] == row_keys(["a"], 0)[0] != row_keys(["a"], 1)[0])
    True
    """
    hash_key = f"{seed:016d}"[-16:]
    return pd.util.hash_array(np.asarray(row_ids, dtype=object), hash_key=hash_key)


@dataclass(frozen=True)
class RowSample:
    """At most ``size`` rows (a DataFrame whose :data:`KEY_COLUMN` holds the keys, sorted)."""

    rows: pd.DataFrame
    size: int

    @classmethod
    def of(cls, rows: pd.DataFrame, row_ids: Sequence[str], size: int, seed: int) -> RowSample:
        """The sample of ``rows`` identified by ``row_ids``.

        >>> import pandas as pd
        >>> len(RowSample.of(pd.DataFrame({"x": [1, 2, 3]}), ["a", "b", "c"], 2, 0))
        2
        """
        if len(row_ids) != len(rows):
            raise ValueError(f"row_ids: {len(row_ids)} ids for {len(rows)} rows")
        keys = row_keys(row_ids, seed)
        keep = np.argsort(keys, kind="stable")[:size]
        kept = rows.iloc[keep].reset_index(drop=True)
        kept.insert(0, KEY_COLUMN, keys[keep])
        return cls(kept, size)

    def __len__(self) -> int:
        return len(self.rows)

    def merge(self, other: RowSample) -> RowSample:
        """The sample of both samples' rows (the smallest keys of the two).

        >>> import pandas as pd
        >>> a = RowSample.of(pd.DataFrame({"x": [1]}), ["a"], 5, 0)
        >>> len(a.merge(RowSample.of(pd.DataFrame({"y": [2]}), ["b"], 5, 0)).rows.columns)
        3
        """
        size = max(self.size, other.size)
        both = pd.concat([self.rows, other.rows], ignore_index=True)
        both = both.sort_values(KEY_COLUMN, kind="stable").head(size)
        return RowSample(both.reset_index(drop=True), size)

    def frame(self) -> pd.DataFrame:
        """The sampled rows without their keys.

        >>> import pandas as pd
        >>> RowSample.of(pd.DataFrame({"x": [1]}), ["a"], 5, 0).frame().columns.tolist()
        ['x']
        """
        return self.rows.drop(columns=KEY_COLUMN)

    def to_bytes(self) -> bytes:
        """Compressed JSON: the keys as text (JSON numbers lose 64-bit integers), the rows
        (dates and durations as ISO 8601 text, read back as their dtypes).

        >>> import pandas as pd
        >>> s = RowSample.of(pd.DataFrame({"x": [1.5, None]}), ["a", "b"], 5, 0)
        >>> RowSample.from_bytes(s.to_bytes()).rows.equals(s.rows)
        True
        """
        frame = self.frame()
        columns = {name: _plain(frame[name]) for name in frame.columns}
        state = {
            "size": self.size,
            "keys": [str(k) for k in self.rows[KEY_COLUMN].tolist()],
            "columns": columns,
            "order": list(frame.columns),
            # Dates and durations go as ISO 8601 text; their dtypes bring them back.
            "times": {
                name: str(frame[name].dtype)
                for name in frame.columns
                if frame[name].dtype.kind in "mM"
            },
        }
        # Level 1: samples are written on every fold; higher levels cost several times more.
        return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> RowSample:
        """Rebuild from :meth:`to_bytes`."""
        state = json.loads(zlib.decompress(data))
        frame = pd.DataFrame({name: state["columns"][name] for name in state["order"]})
        if frame.empty and not state["order"]:
            frame = pd.DataFrame(index=range(len(state["keys"])))
        times = state.get("times", {})
        for name in frame.columns:
            if name in times:
                frame[name] = _times(frame[name], times[name])
            elif frame[name].dtype == object and frame[name].map(_is_number).all():
                frame[name] = frame[name].astype(float)
        frame.insert(0, KEY_COLUMN, np.array([int(k) for k in state["keys"]], dtype=np.uint64))
        return cls(frame, int(state["size"]))


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _times(values: pd.Series, dtype: str) -> pd.Series:
    """ISO 8601 text (``None`` where missing) back as the dates or durations of ``dtype``."""
    kind = pd.api.types.pandas_dtype(dtype)
    if kind.kind == "m":
        return pd.to_timedelta(values).astype(kind)
    tz = getattr(kind, "tz", None)
    parsed = pd.to_datetime(values, utc=tz is not None, format="ISO8601")
    return parsed.dt.tz_convert(tz).astype(kind) if tz is not None else parsed.astype(kind)


def _plain(series: pd.Series) -> list:
    if series.dtype.kind in "mM":
        return [None if pd.isna(v) else v.isoformat() for v in series.tolist()]
    if series.dtype.kind in "fiub":
        values = series.astype(float) if series.dtype.kind == "f" else series
        return [None if isinstance(v, float) and v != v else v for v in values.tolist()]
    return [None if v is None or (isinstance(v, float) and v != v) else v for v in series.tolist()]
