"""The profile of a table: one :class:`~opsloop.data.profile.column.ColumnProfile` per column.

:func:`profile` reads a DataFrame (or a Series or numpy array) once, column by column, with
vectorised numpy/pandas/Arrow passes. A :class:`Profile` merges with another
(:meth:`Profile.merge`, :func:`merge_profiles`) into the profile of the rows of both, so a
large data set is profiled as ``map(profile) -> reduce(merge)`` over its chunks or partitions:

* counts, null counts, sums, minima, maxima, true counts and exact value counts of the merged
  profile equal those of ``profile(pd.concat([a, b]))`` exactly;
* means, variances, skewness and kurtosis are equal up to float rounding (the mean exactly,
  being a correctly rounded exact sum);
* quantiles, histograms, sketched top values and sketched distinct counts are equal within
  their sketches' error bounds.

Columns present in only one profile are merged as ``pd.concat`` aligns them: the other
profile's rows count as nulls of that column. Column order is the first profile's, then the
columns only the second has.

A profile serialises losslessly, sketches included, with :meth:`Profile.to_bytes` (compressed
JSON, no pickle) and :meth:`Profile.from_bytes`, so profiles can be stored and merged later.

>>> import pandas as pd
>>> df = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "c": ["a", "b", "a", "a"]})
>>> whole = profile(df)
>>> merged = profile(df.iloc[:2]).merge(profile(df.iloc[2:]))
>>> merged["x"].numeric.mean == whole["x"].numeric.mean, merged["c"].null_count
(True, 0)
>>> Profile.from_bytes(whole.to_bytes()).to_dict() == whole.to_dict()
True
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opsloop.data.profile.column import ColumnProfile, profile_column
from opsloop.data.profile.frequencies import DEFAULT_TOP
from opsloop.data.profile.options import SketchOptions

_FORMAT = "opsloop.profile"
_VERSION = 1


@dataclass(frozen=True, eq=False)
class Profile:
    """Per-column statistics of ``n_rows`` rows.

    >>> import pandas as pd
    >>> p = profile(pd.DataFrame({"a": [1, 2], "b": ["x", None]}))
    >>> p.names, p.n_rows, p["b"].null_count
    (('a', 'b'), 2, 1)
    """

    n_rows: int
    columns: tuple[ColumnProfile, ...]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"column names must be unique, got {names}")
        for column in self.columns:
            if column.count != self.n_rows:
                raise ValueError(
                    f"column {column.name!r} has {column.count} rows, the profile {self.n_rows}"
                )

    @property
    def names(self) -> tuple[str, ...]:
        """Column names, in order."""
        return tuple(c.name for c in self.columns)

    def __getitem__(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"no column {name!r} in the profile; columns: {list(self.names)}")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[ColumnProfile]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def merge(self, other: Profile) -> Profile:
        """The profile of both profiles' rows together (see the module docstring).

        >>> import pandas as pd
        >>> a = profile(pd.DataFrame({"x": [1, 2]}))
        >>> b = profile(pd.DataFrame({"x": [3], "y": ["u"]}))
        >>> m = a.merge(b)
        >>> m.n_rows, m["x"].numeric.sum, m["y"].null_count
        (3, 6.0, 2)
        """
        if not isinstance(other, Profile):
            raise TypeError(f"can only merge a Profile, got {type(other).__name__}")
        merged = []
        for column in self.columns:
            if column.name in other:
                merged.append(column.merge(other[column.name]))
            else:
                merged.append(column.merge(_all_null(column, other.n_rows)))
        for column in other.columns:
            if column.name not in self:
                merged.append(_all_null(column, self.n_rows).merge(column))
        return Profile(self.n_rows + other.n_rows, tuple(merged))

    def to_dict(self, top: int = DEFAULT_TOP) -> dict:
        """A JSON-safe summary: ``n_rows`` and each column's :meth:`ColumnProfile.to_dict`.

        >>> import pandas as pd
        >>> profile(pd.DataFrame({"a": [1, 2]})).to_dict()["columns"]["a"]["numeric"]["max"]
        2
        """
        return {
            "n_rows": self.n_rows,
            "columns": {c.name: c.to_dict(top) for c in self.columns},
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per column with the main statistics, indexed by column name.

        >>> import pandas as pd
        >>> profile(pd.DataFrame({"a": [1, 3], "b": ["x", "x"]})).to_frame()[["type", "mean"]]
                  type mean
        column
        a          int  2.0
        b     category  None
        """
        rows = [c.summary_row() for c in self.columns]
        frame = pd.DataFrame(rows, index=pd.Index(self.names, name="column"), dtype=object)
        for name in ("count", "null_count", "invalid_count"):
            frame[name] = frame[name].astype(np.int64)
        return frame

    def _repr_html_(self) -> str:
        return self.to_frame().to_html()

    def to_state(self) -> dict:
        """A lossless dictionary, sketches included, that ``json.dumps`` writes.

        >>> import pandas as pd
        >>> profile(pd.DataFrame({"a": [1]})).to_state()["format"]
        'opsloop.profile'
        """
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "n_rows": self.n_rows,
            "columns": [c.to_state() for c in self.columns],
        }

    @classmethod
    def from_state(cls, state: dict) -> Profile:
        """Rebuild from :meth:`to_state`.

        >>> import pandas as pd
        >>> p = profile(pd.DataFrame({"a": [1.5, None]}))
        >>> Profile.from_state(p.to_state())["a"].null_count
        1
        """
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"state is not an {_FORMAT} state (its 'format' field differs)")
        if state.get("version") != _VERSION:
            raise ValueError(f"state version must be {_VERSION}, got {state.get('version')!r}")
        columns = tuple(ColumnProfile.from_state(c) for c in state["columns"])
        return cls(int(state["n_rows"]), columns)

    def to_bytes(self) -> bytes:
        """:meth:`to_state` as zlib-compressed JSON: lossless, safe to load.

        >>> import pandas as pd
        >>> profile(pd.DataFrame({"a": [1]})).to_bytes()[:2]
        b'x\\x9c'
        """
        return zlib.compress(json.dumps(self.to_state(), separators=(",", ":")).encode())

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        """Rebuild from :meth:`to_bytes`.

        >>> Profile.from_bytes(b"not a profile")
        Traceback (most recent call last):
        ...
        ValueError: data is not a serialised profile (zlib-compressed JSON expected)
        """
        try:
            state = json.loads(zlib.decompress(data))
        except (zlib.error, ValueError) as error:
            raise ValueError(
                "data is not a serialised profile (zlib-compressed JSON expected)"
            ) from error
        return cls.from_state(state)


def profile(
    data: pd.DataFrame | pd.Series | np.ndarray,
    *,
    quantile_k: int = SketchOptions.quantile_k,
    max_exact_values: int = SketchOptions.max_exact_values,
    frequent_lg_size: int = SketchOptions.frequent_lg_size,
    distinct_lg_k: int = SketchOptions.distinct_lg_k,
) -> Profile:
    """Profile every column of ``data``.

    ``data`` is a DataFrame (column names are turned into strings and must stay unique), a
    Series (one column, named after the Series or ``"value"``), a 1-D array (one column
    ``"value"``) or a 2-D array (columns ``"0"``, ``"1"``, ...). Image batches go to
    :func:`~opsloop.data.profile.images.profile_images`. The keyword arguments size the
    sketches (:class:`~opsloop.data.profile.options.SketchOptions`).
    ``opsloop.data.profile.profile`` also takes a ``dask.dataframe``
    (:mod:`opsloop.data.distributed.profile`).

    >>> import numpy as np
    >>> p = profile(np.array([1.0, np.inf, np.nan, 3.0]))
    >>> c = p["value"]
    >>> c.null_count, c.numeric.n_pos_inf, c.numeric.mean
    (1, 1, 2.0)
    """
    options = SketchOptions(quantile_k, max_exact_values, frequent_lg_size, distinct_lg_k)
    frame = _as_frame(data)
    names = [str(name) for name in frame.columns]
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"column names must be unique as strings, duplicated: {duplicated}")
    columns = tuple(profile_column(frame.iloc[:, i], name, options) for i, name in enumerate(names))
    return Profile(len(frame), columns)


def merge_profiles(profiles: Iterable[Profile]) -> Profile:
    """Merge profiles left to right (for ``map(profile) -> reduce(merge)`` over chunks).

    >>> import pandas as pd
    >>> chunks = [pd.DataFrame({"x": [i, i + 1]}) for i in range(3)]
    >>> merge_profiles(profile(c) for c in chunks)["x"].numeric.sum
    9.0
    """
    profiles = iter(profiles)
    try:
        first = next(profiles)
    except StopIteration:
        raise ValueError("profiles must hold at least one profile") from None
    return functools.reduce(Profile.merge, profiles, first)


def _as_frame(data: object) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame(name="value" if data.name is None else data.name)
    if isinstance(data, np.ndarray):
        if data.ndim == 1:
            return pd.DataFrame({"value": data})
        if data.ndim == 2:
            return pd.DataFrame(data, columns=[str(i) for i in range(data.shape[1])])
        raise ValueError(
            f"data must be a 1-D or 2-D array, got {data.ndim} dimensions "
            "(profile image batches with profile_images)"
        )
    raise TypeError(
        f"data must be a pandas DataFrame or Series or a numpy array, got {type(data).__name__}"
    )


def _all_null(column: ColumnProfile, n_rows: int) -> ColumnProfile:
    # A column one side lacks: pd.concat fills those rows with nulls.
    return ColumnProfile(column.name, column.logical_type, n_rows, n_rows)
