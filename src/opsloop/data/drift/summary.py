"""Per-column summaries that drift tests compare, and the cached reference profile.

A column is summarised once into what its tests need: numeric-like columns (numbers, dates as
epoch seconds, durations as seconds, free text as its length in characters) into a
:class:`SortedSample`; categorical-like columns (categories, booleans, numbers with few
distinct values) into counts per value. A :class:`ReferenceProfile` holds the summaries of a
reference data set; saved to disk it lets monitoring compare each new window without touching
the training data again. P-values from a reference profile are exact: the profile keeps every
sorted value, not a sketch.

>>> import pandas as pd
>>> ref = ReferenceProfile.from_frame(pd.DataFrame({"x": [1.5, 2.5, None], "c": ["a", "b", "a"]}))
>>> ref["x"].kind, ref["x"].n_missing, ref["c"].kind, ref["c"].counts
('numeric', 1, 'categorical', {'a': 2, 'b': 1})
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from opsloop.data.drift.kernels import merge_sorted, sort_floats
from opsloop.data.drift.numeric import SortedSample
from opsloop.data.drift.sketched import SketchedSample
from opsloop.data.period_columns import duration_seconds, readable_column
from opsloop.data.types import infer_column_type

#: A numeric column with at most this many distinct reference values, each repeated
#: :data:`MIN_LEVEL_REPEATS` times on average, is tested as discrete (chi-square on value
#: counts): the KS test is conservative on data with heavy ties (at a million rows, integer
#: columns of 50-100 levels raised 0-1% false alarms at alpha = 5%), chi-square is not.
MAX_DISCRETE_LEVELS = 200
MIN_LEVEL_REPEATS = 10

SAMPLE_KINDS = frozenset({"numeric", "datetime", "text"})
COUNT_KINDS = frozenset({"categorical", "bool", "discrete"})


@dataclass(frozen=True, eq=False)
class ColumnSummary:
    """What the drift tests need to know of one column of one sample.

    ``kind`` is one of ``numeric``, ``datetime``, ``text`` (compared through
    ``sample``) or ``categorical``, ``bool``, ``discrete`` (compared through ``counts``,
    a mapping from value to count). ``n_invalid`` counts values that could not be read as
    the column's kind (for example a string in a numeric column); they are left out of the
    tests like missing values.
    """

    name: str
    kind: str
    n_rows: int
    n_missing: int
    n_invalid: int = 0
    sample: SortedSample | None = None
    counts: dict | None = None

    @property
    def n_valid(self) -> int:
        """Values the tests use."""
        if self.sample is not None:
            return self.sample.n
        return int(sum(self.counts.values())) if self.counts else 0

    def merge(self, other: ColumnSummary) -> ColumnSummary:
        """The summary of this sample's rows followed by ``other``'s (two chunks of one
        column, summarised as the same kind); :func:`merge_summaries` merges many at once.

        >>> import pandas as pd
        >>> a = summarize(pd.Series([3.0, 1.0]), "numeric")
        >>> b = summarize(pd.Series([2.0, None]), "numeric")
        >>> m = a.merge(b)
        >>> m.sample.values.tolist(), m.n_rows, m.n_missing
        ([1.0, 2.0, 3.0], 4, 1)
        """
        return merge_summaries([self, other])


def merge_summaries(summaries: Sequence[ColumnSummary]) -> ColumnSummary:
    """The summary of the chunks' rows in order (chunks of one column, summarised as the same
    kind): the sorted values of all chunks merged (sketches merged, for sketched
    chunks), counts added in the order a summary of the whole column lists them.

    >>> import pandas as pd
    >>> parts = [summarize(pd.Series(v), "categorical") for v in (["b", "a"], ["c", "b"])]
    >>> merge_summaries(parts).counts
    {'b': 2, 'a': 1, 'c': 1}
    """
    first = summaries[0]
    for other in summaries[1:]:
        if (other.name, other.kind) != (first.name, first.kind):
            raise ValueError(
                f"cannot merge the summary of column {first.name!r} ({first.kind}) with that "
                f"of column {other.name!r} ({other.kind})"
            )
    sample = counts = None
    if isinstance(first.sample, SketchedSample):
        sample = first.sample.merge([s.sample for s in summaries[1:]])
    elif first.sample is not None:
        sample = SortedSample(
            merge_sorted([s.sample.values for s in summaries]),
            sum(s.sample.n_missing for s in summaries),
            sum(s.sample.n_nonfinite for s in summaries),
        )
    else:
        counts = {}
        for summary in summaries:
            for label, count in summary.counts.items():
                counts[label] = counts.get(label, 0) + count
        if first.kind == "discrete":  # numeric levels, in value order as _run_counts has them
            counts = dict(sorted(counts.items()))
    return ColumnSummary(
        first.name,
        first.kind,
        sum(s.n_rows for s in summaries),
        sum(s.n_missing for s in summaries),
        sum(s.n_invalid for s in summaries),
        sample,
        counts,
    )


def column_kind(series: pd.Series) -> str:
    """The drift kind of a reference column (see :class:`ColumnSummary`).

    >>> import pandas as pd
    >>> column_kind(pd.Series([1, 2] * 10)), column_kind(pd.Series([True, False]))
    ('discrete', 'bool')
    >>> column_kind(pd.Series([1.5, 2.5, 4.0]))
    'numeric'
    """
    return summarize(series).kind


def _is_discrete(sorted_values: np.ndarray) -> bool:
    n = sorted_values.size
    if n == 0:
        return False
    n_distinct = 1 + int(np.count_nonzero(sorted_values[1:] != sorted_values[:-1]))
    # Few levels *and* many repeats: a small continuous sample without ties stays numeric.
    return n_distinct <= MAX_DISCRETE_LEVELS and n_distinct * MIN_LEVEL_REPEATS <= n


def _run_counts(sorted_values: np.ndarray) -> dict:
    if sorted_values.size == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    counts = np.diff(np.r_[starts, sorted_values.size])
    return {float(v): int(c) for v, c in zip(sorted_values[starts], counts, strict=True)}


def _numeric_values(series: pd.Series) -> tuple[np.ndarray, int]:
    """Float values of a column, NaN where missing; also the count of unreadable values."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("float64").to_numpy(), 0
    if series.dtype.kind == "m":
        return duration_seconds(series), 0
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan), 0
    missing = series.isna().to_numpy()
    converted = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    invalid = int(np.count_nonzero(np.isnan(converted) & ~missing))
    return converted, invalid


_UNITS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _datetime_values(series: pd.Series) -> tuple[np.ndarray, int]:
    missing = series.isna().to_numpy()
    converted = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
    retry = converted.isna().to_numpy() & ~missing
    if retry.any():
        # ISO 8601 with 'T' and with a space, or other spellings, mixed in one column (a
        # window's dates come back as text): each value read by its own format.
        again = pd.to_datetime(series[retry], errors="coerce", utc=True, format="mixed")
        converted = converted.copy()
        converted[retry] = again
    # From the stored integers at their own unit: a datetime64[s] column past 2262 (a
    # far-future Period) has no nanosecond timestamp to subtract.
    array = converted.array
    per_second = _UNITS_PER_SECOND[array.unit]
    whole, rest = np.divmod(array.asi8, per_second)
    seconds = whole.astype(np.float64) + rest / per_second
    seconds[converted.isna().to_numpy()] = np.nan
    invalid = int(np.count_nonzero(np.isnan(seconds) & ~missing))
    return seconds, invalid


def _text_lengths(series: pd.Series) -> tuple[np.ndarray, int]:
    strings = series.astype("string")
    return strings.str.len().to_numpy(dtype="float64", na_value=np.nan), 0


def _value_counts(series: pd.Series, kind: str) -> tuple[dict, int]:
    if kind == "discrete":
        values, invalid = _numeric_values(series)
        # ±inf is left out as in a numeric sample (the result counts it): as a level it
        # would have no distance to the others.
        return _run_counts(sort_floats(values[np.isfinite(values)])), invalid
    counts = series.value_counts(dropna=True, sort=False)
    counts = counts[counts > 0]
    # Labels are compared as text so that 1 and "1" from two file formats are one category.
    out: dict = {}
    for label, count in zip(counts.index.map(str), counts.to_numpy(), strict=True):
        out[label] = out.get(label, 0) + int(count)
    return out, 0


def summarize(series: pd.Series, kind: str | None = None, name: str | None = None):
    """Summarise one column as ``kind`` (inferred from the column when not given).

    >>> import pandas as pd
    >>> summarize(pd.Series(["x", "y", None, "x"])).counts
    {'x': 2, 'y': 1}
    """
    name = str(series.name) if name is None else name
    # A Period is the time it starts; a complex column is refused (see the module).
    series = readable_column(series, name)
    n_rows = len(series)
    n_missing = int(series.isna().sum())
    if kind is None:
        logical = infer_column_type(series)
        # A duration is a number of seconds: as text its length would hide any change.
        if series.dtype.kind == "m":
            logical = "float"
        if logical in ("int", "float"):
            values, invalid = _numeric_values(series)
            sample = SortedSample.from_values(values)
            if _is_discrete(sample.values):
                counts = _run_counts(sample.values)
                return ColumnSummary(name, "discrete", n_rows, n_missing, invalid, counts=counts)
            return ColumnSummary(name, "numeric", n_rows, n_missing, invalid, sample=sample)
        kind = {"bool": "bool", "category": "categorical", "datetime": "datetime"}.get(
            logical, "text"
        )
    if kind in COUNT_KINDS:
        counts, invalid = _value_counts(series, kind)
        return ColumnSummary(name, kind, n_rows, n_missing, invalid, counts=counts)
    reader = {"numeric": _numeric_values, "datetime": _datetime_values, "text": _text_lengths}
    if kind not in reader:
        raise ValueError(f"column {name!r}: unknown drift kind {kind!r}")
    values, invalid = reader[kind](series)
    sample = SortedSample.from_values(values)
    return ColumnSummary(name, kind, n_rows, n_missing, invalid, sample=sample)


class ReferenceProfile(Mapping):
    """The reference side of drift detection, summarised once and reusable.

    >>> import pandas as pd
    >>> profile = ReferenceProfile.from_frame(pd.DataFrame({"a": [0.5, 1.5, 2.5]}))
    >>> list(profile), profile["a"].sample.values.tolist()
    (['a'], [0.5, 1.5, 2.5])
    """

    def __init__(self, columns: Iterable[ColumnSummary]):
        self._columns = {c.name: c for c in columns}

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        columns: Iterable[str] | None = None,
        kinds: Mapping[str, str] | None = None,
    ) -> ReferenceProfile:
        """Summarise the given (default: all) columns of ``frame`` (a pandas DataFrame; for
        a ``dask.dataframe``: :func:`opsloop.data.distributed.drift.reference_profile`)."""
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"reference must be a pandas DataFrame, got {type(frame).__name__}")
        names = list(frame.columns) if columns is None else list(columns)
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise ValueError(f"columns not in the reference: {missing}")
        kinds = dict(kinds or {})
        return cls(summarize(frame[c], kinds.get(c), str(c)) for c in names)

    def __getitem__(self, name: str) -> ColumnSummary:
        column = self._columns[name]
        # a profile loaded with lazy=True holds readers: each access reads that column anew
        return column() if callable(column) else column

    def __contains__(self, name: object) -> bool:
        # Mapping's default would look the column up, which reads it from a lazy profile.
        return name in self._columns

    def __iter__(self):
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def save(self, path: str | Path) -> Path:
        """Write the profile to one ``.npz`` file (sorted values and counts, no pickle).

        >>> import pandas as pd, tempfile, pathlib
        >>> p = ReferenceProfile.from_frame(pd.DataFrame({"a": [1.0, 2.0], "b": ["u", "v"]}))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     back = ReferenceProfile.load(p.save(pathlib.Path(d) / "ref.npz"))
        >>> back["a"].sample.values.tolist(), back["b"].counts
        ([1.0, 2.0], {'u': 1, 'v': 1})
        """
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        meta = []
        for i, col in enumerate(self[name] for name in self._columns):
            entry = {
                "name": col.name,
                "kind": col.kind,
                "n_rows": col.n_rows,
                "n_missing": col.n_missing,
                "n_invalid": col.n_invalid,
            }
            if col.sample is not None:
                arrays[f"values_{i}"] = col.sample.values
                entry["n_sample_missing"] = col.sample.n_missing
                entry["n_nonfinite"] = col.sample.n_nonfinite
            else:
                entry["counts"] = [[k, v] for k, v in col.counts.items()]
            meta.append(entry)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        with path.open("wb") as handle:
            np.savez(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path, *, lazy: bool = False) -> ReferenceProfile:
        """Read a profile written by :meth:`save`.

        With ``lazy=True`` only the column list is read now; each column's sorted values are
        read from the file when that column is looked up, and not kept: :func:`compare` then
        holds one reference column at a time instead of the whole profile. The file must stay
        in place while the profile is used.

        >>> import pandas as pd, tempfile, pathlib
        >>> p = ReferenceProfile.from_frame(pd.DataFrame({"a": [2.0, 1.0], "b": ["u", "v"]}))
        >>> with tempfile.TemporaryDirectory() as d:
        ...     lazy = ReferenceProfile.load(p.save(pathlib.Path(d) / "ref.npz"), lazy=True)
        ...     print(list(lazy), lazy["a"].sample.values.tolist(), lazy["b"].counts)
        ['a', 'b'] [1.0, 2.0] {'u': 1, 'v': 1}
        """
        path = Path(path)
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes().decode())
            if not lazy:
                return cls(_stored_column(entry, i, data) for i, entry in enumerate(meta))
        profile = cls(())
        for i, entry in enumerate(meta):
            profile._columns[entry["name"]] = functools.partial(_read_stored_column, path, entry, i)
        return profile


def _stored_column(entry: dict, index: int, data) -> ColumnSummary:
    """Column ``index`` of a saved profile from its metadata and the open ``.npz`` file."""
    sample = counts = None
    if f"values_{index}" in data:
        sample = SortedSample(
            data[f"values_{index}"], entry["n_sample_missing"], entry["n_nonfinite"]
        )
    else:
        counts = {k: int(v) for k, v in entry["counts"]}
    return ColumnSummary(
        entry["name"],
        entry["kind"],
        entry["n_rows"],
        entry["n_missing"],
        entry["n_invalid"],
        sample,
        counts,
    )


def _read_stored_column(path: Path, entry: dict, index: int) -> ColumnSummary:
    with np.load(path, allow_pickle=False) as data:
        return _stored_column(entry, index, data)
