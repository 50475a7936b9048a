"""Reading a table from a file by its extension: CSV, Parquet or JSON lines.

>>> import pandas as pd, tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     path = pathlib.Path(d) / "t.csv"
...     _ = path.write_text("a,b\\n1,x\\n2,y\\n")
...     read_table(path).shape
(2, 2)
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


class TableReadError(ValueError):
    """A table could not be read; the message names the file and the reason."""


def read_table(path: str | Path) -> pd.DataFrame:
    """Read ``path`` as CSV (``.csv``, ``.tsv``), Parquet (``.parquet``, ``.pq``) or JSON
    lines (``.jsonl``, ``.ndjson``, ``.json``); raise :class:`TableReadError` otherwise.

    >>> read_table("no/such/file.csv")
    Traceback (most recent call last):
    ...
    opsloop.data.io.TableReadError: no/such/file.csv: no such file
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise TableReadError(f"{path}: unknown format {path.suffix!r} (known: {known})")
    if not path.exists():
        raise TableReadError(f"{path}: no such file")
    if path.is_dir():
        raise TableReadError(f"{path}: is a directory, not a file")
    try:
        if fmt == "csv":
            return pd.read_csv(path)
        if fmt == "tsv":
            return pd.read_csv(path, sep="\t")
        if fmt == "parquet":
            return pd.read_parquet(path)
        return pd.read_json(path, lines=True)
    except PermissionError as error:
        raise TableReadError(f"{path}: permission denied") from error
    except pd.errors.EmptyDataError as error:
        raise TableReadError(f"{path}: the file is empty") from error
    except (ValueError, OSError, UnicodeDecodeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TableReadError(f"{path}: cannot read as {fmt}: {reason}") from error
