"""Reading a table from a file by its extension: CSV, Parquet or JSON lines.

Compressed files are read by their last suffix (``data.csv.gz``, ``events.jsonl.gz``; gzip,
bz2, xz and zstd), and a directory of ``.parquet`` files (a partitioned data set, as Spark
and pyarrow write it) is read as one table.

**Dates in text formats.** CSV and JSON have no date type, so a date there is a string, and
would be judged as text (by its length). A text column becomes a datetime column when every
non-empty value is an ISO 8601 date or date-time: ``YYYY-MM-DD``, optionally followed by
``T`` or a space and ``HH:MM``, ``HH:MM:SS`` or ``HH:MM:SS.fraction``, optionally followed
by ``Z`` or an offset ``±HH:MM``. When any value carries a zone the column is read in UTC;
otherwise it is naive. A column that mixes dates with anything else stays text. Parquet keeps
its own types.

>>> import pandas as pd, tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     path = pathlib.Path(d) / "t.csv"
...     _ = path.write_text("a,b,when\\n1,x,2024-01-02\\n2,y,2024-01-03 10:30\\n")
...     read_table(path).dtypes.astype(str).tolist()
['int64', 'str', 'datetime64[us]']
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
#: Compression suffixes read by pandas, in front of which the format's suffix stands.
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")

# The ISO 8601 rule of the module docstring, as one regular expression.
_ISO_DATETIME = (
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?"
)


class TableReadError(ValueError):
    """A table could not be read; the message names the file and the reason."""


def table_format(path: str | Path) -> str:
    """The format ``path`` is read as, from its suffixes (a compression suffix skipped).

    >>> table_format("events.jsonl.gz"), table_format("data.CSV"), table_format("t.parquet")
    ('jsonl', 'csv', 'parquet')
    >>> table_format("notes.txt")
    Traceback (most recent call last):
    ...
    opsloop.data.io.TableReadError: notes.txt: unknown format '.txt' (known: .csv, ...)
    """
    path = Path(path)
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    fmt = FORMATS.get(suffix)
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise TableReadError(f"{path}: unknown format {suffix!r} (known: {known})")
    return fmt


def read_table(path: str | Path) -> pd.DataFrame:
    """Read ``path`` as CSV (``.csv``, ``.tsv``), Parquet (``.parquet``, ``.pq``, or a
    directory of them) or JSON lines (``.jsonl``, ``.ndjson``, ``.json``), each possibly
    compressed; raise :class:`TableReadError` otherwise. ISO dates in CSV and JSON are read
    as datetimes (see the module docstring).

    >>> read_table("no/such/file.csv")
    Traceback (most recent call last):
    ...
    opsloop.data.io.TableReadError: no/such/file.csv: no such file
    """
    path = Path(path)
    if path.is_dir():
        return _read_parquet_directory(path)
    fmt = table_format(path)
    if not path.exists():
        raise TableReadError(f"{path}: no such file")
    try:
        if fmt == "csv":
            return parse_iso_dates(pd.read_csv(path))
        if fmt == "tsv":
            return parse_iso_dates(pd.read_csv(path, sep="\t"))
        if fmt == "parquet":
            return pd.read_parquet(path)
        # pandas' own date guess goes by column names and turns numbers into dates; the
        # module's one rule decides instead.
        frame = pd.read_json(path, lines=True, dtype=False)
        return parse_iso_dates(frame)
    except PermissionError as error:
        raise TableReadError(f"{path}: permission denied") from error
    except pd.errors.EmptyDataError as error:
        raise TableReadError(f"{path}: the file is empty") from error
    except (ValueError, OSError, UnicodeDecodeError, EOFError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TableReadError(f"{path}: cannot read as {fmt}: {reason}") from error


def parse_iso_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text column of ISO 8601 dates parsed as datetimes (the module
    docstring's rule); other columns are unchanged.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"at": ["2024-01-02T03:04:05Z", None], "n": ["2024-01-02", "x"]})
    >>> parse_iso_dates(frame).dtypes.astype(str).tolist()
    ['datetime64[us, UTC]', 'str']
    """
    out = frame
    for name in frame.columns:
        series = frame[name]
        if not (
            pd.api.types.is_object_dtype(series.dtype) or isinstance(series.dtype, pd.StringDtype)
        ):
            continue
        present = series.dropna()
        if len(present) == 0 or pd.api.types.infer_dtype(present, skipna=False) != "string":
            continue
        found = present.str.extract(f"^{_ISO_DATETIME}$")
        if not present.str.fullmatch(_ISO_DATETIME).all():
            continue
        zoned = bool(found["zone"].notna().any())
        try:
            parsed = pd.to_datetime(series, format="ISO8601", utc=zoned)
        except (ValueError, OverflowError):
            continue  # matched the pattern but is no date (a month 13): it stays text
        if out is frame:
            out = frame.copy()
        out[name] = parsed
    return out


def _read_parquet_directory(path: Path) -> pd.DataFrame:
    if not any(path.rglob("*.parquet")):
        raise TableReadError(f"{path}: is a directory with no .parquet files")
    try:
        return pd.read_parquet(path)
    except (ValueError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TableReadError(f"{path}: cannot read as a parquet directory: {reason}") from error
