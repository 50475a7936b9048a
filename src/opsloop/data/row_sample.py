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

import contextlib
import datetime
import json
import zlib
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opsloop.errors import InvalidArgumentError

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
        (dates as integer instants since 1970 UTC in their unit, with their zone's name or
        fixed offset; durations as integers in their unit; both read back as their dtypes).

        A column of Python dates, datetimes or timedeltas (as ``read_sql`` gives them) is
        kept as the datetime64/timedelta64 column pandas makes of it. A zone that has no
        IANA name nor a fixed offset, or values JSON cannot hold, raise
        :class:`~opsloop.errors.InvalidArgumentError` naming the column: what is written
        can always be read back.

        >>> import pandas as pd
        >>> s = RowSample.of(pd.DataFrame({"x": [1.5, None]}), ["a", "b"], 5, 0)
        >>> RowSample.from_bytes(s.to_bytes()).rows.equals(s.rows)
        True
        """
        frame = self.frame()
        columns, times = {}, {}
        for name in frame.columns:
            series = _typed_times(frame[name], name)
            if series.dtype.kind in "mM":
                columns[name], times[name] = _instants(series, name)
            else:
                columns[name] = _plain(series)
        state = {
            "size": self.size,
            "keys": [str(k) for k in self.rows[KEY_COLUMN].tolist()],
            "columns": columns,
            "order": list(frame.columns),
            "times": times,
        }
        try:
            text = json.dumps(state, separators=(",", ":"))
        except TypeError:
            _refuse_unwritable(columns)
            raise
        # Level 1: samples are written on every fold; higher levels cost several times more.
        return zlib.compress(text.encode(), 1)

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
                frame[name] = _times(state["columns"][name], times[name])
            elif frame[name].dtype == object and frame[name].map(_is_number).all():
                frame[name] = frame[name].astype(float)
        frame.insert(0, KEY_COLUMN, np.array([int(k) for k in state["keys"]], dtype=np.uint64))
        return cls(frame, int(state["size"]))


_NAT = np.iinfo(np.int64).min  # numpy's NaT as an int64


def _typed_times(series: pd.Series, name: object) -> pd.Series:
    """An object column of Python dates, datetimes or timedeltas as the datetime64 or
    timedelta64 column pandas makes of it; any other column as it is."""
    if series.dtype != object:
        return series
    present = [v for v in series.tolist() if v is not None and not pd.isna(v)]
    if not present:
        return series
    is_date = [isinstance(v, datetime.date) for v in present]
    is_duration = [isinstance(v, datetime.timedelta) for v in present]
    if not any(is_date) and not any(is_duration):
        return series
    if all(is_duration):
        return pd.to_timedelta(series)
    if not all(is_date):
        raise InvalidArgumentError(
            f"column {name!r} mixes dates with other values; give it one type to keep it"
        )
    aware = {isinstance(v, datetime.datetime) and v.tzinfo is not None for v in present}
    if len(aware) > 1:
        raise InvalidArgumentError(
            f"column {name!r} mixes dates with and without a time zone; give them all one"
        )
    try:
        # Several zones in one column: kept as their UTC instants.
        zones = {str(getattr(v, "tzinfo", None)) for v in present}
        return pd.to_datetime(series, utc=aware == {True} and len(zones) > 1)
    except (ValueError, TypeError, OverflowError) as error:
        raise InvalidArgumentError(f"column {name!r}: its dates cannot be kept: {error}") from error


def _zone(tz: datetime.tzinfo, name: object) -> dict:
    """The zone of a column as JSON that names it: an IANA name or a fixed offset."""
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)  # zoneinfo, pytz
    if key is None and isinstance(getattr(tz, "_filename", None), str):  # dateutil's tzfile
        key = tz._filename.rsplit("zoneinfo/", 1)[-1]
    if isinstance(key, str):
        try:
            zoneinfo.ZoneInfo(key)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return {"zone": key}
    fixed = isinstance(tz, datetime.timezone)
    with contextlib.suppress(ImportError):
        from dateutil import tz as dateutil_tz

        fixed = fixed or isinstance(tz, dateutil_tz.tzutc | dateutil_tz.tzoffset)
    if fixed:
        offset = tz.utcoffset(None)
        if offset is not None:
            return {"offset_s": offset.total_seconds()}
    raise InvalidArgumentError(
        f"column {name!r}: its time zone {tz!r} has no IANA name nor a fixed offset to be "
        "kept by; convert the column to a named zone (e.g. tz_convert('Europe/Paris')) or UTC"
    )


def _instants(series: pd.Series, name: object) -> tuple[list, dict]:
    """A datetime64 or timedelta64 column as integers in its unit (``None`` where missing),
    and what brings them back: the kind, the unit and, for an aware date, its zone."""
    if isinstance(series.dtype, pd.ArrowDtype):
        # Arrow-backed times are kept as the numpy-backed dtype of the same unit and zone.
        series = series.astype(series.dtype.pyarrow_dtype.to_pandas_dtype())
    unit = series.dt.unit
    values = series.array.asi8
    plain = [None if v == _NAT else v for v in values.tolist()]
    spec: dict = {"kind": series.dtype.kind, "unit": unit}
    tz = getattr(series.dtype, "tz", None)
    if tz is not None:
        spec.update(_zone(tz, name))
    return plain, spec


def _times(values: list, spec: dict | str) -> pd.Series:
    """The integers of :func:`_instants` back as the dates or durations they were."""
    if isinstance(spec, str):
        # Samples written as ISO 8601 text with their dtype's name.
        kind = pd.api.types.pandas_dtype(spec)
        if kind.kind == "m":
            return pd.to_timedelta(pd.Series(values)).astype(kind)
        tz = getattr(kind, "tz", None)
        parsed = pd.to_datetime(pd.Series(values), utc=tz is not None, format="ISO8601")
        return parsed.dt.tz_convert(tz).astype(kind) if tz is not None else parsed.astype(kind)
    ints = np.array([_NAT if v is None else v for v in values], dtype=np.int64)
    series = pd.Series(ints.view(f"{'m8' if spec['kind'] == 'm' else 'M8'}[{spec['unit']}]"))
    if "zone" in spec:
        return series.dt.tz_localize("UTC").dt.tz_convert(zoneinfo.ZoneInfo(spec["zone"]))
    if "offset_s" in spec:
        offset = datetime.timezone(datetime.timedelta(seconds=spec["offset_s"]))
        return series.dt.tz_localize("UTC").dt.tz_convert(offset)
    return series


def _refuse_unwritable(columns: dict) -> None:
    """Name the first column whose values JSON cannot hold."""
    for name, values in columns.items():
        try:
            json.dumps(values)
        except TypeError:
            kinds = sorted({type(v).__name__ for v in values if v is not None})
            raise InvalidArgumentError(
                f"column {name!r} holds values that cannot be kept in a sample "
                f"({', '.join(kinds)}); convert them to numbers, text, dates or durations"
            ) from None


def _is_number(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _plain(series: pd.Series) -> list:
    if series.dtype.kind in "fiub":
        values = series.astype(float) if series.dtype.kind == "f" else series
        return [None if isinstance(v, float) and v != v else v for v in values.tolist()]
    return [None if v is None or (isinstance(v, float) and v != v) else v for v in series.tolist()]
