"""The inputs of events logged together, kept once per batch, column by column.

:func:`opsloop.monitoring.log_predictions` writes a batch's input rows as one Arrow IPC
stream in the ``prediction_input_batches`` table, and each of its events points at its row
(``input_batch_id``, ``input_row``) instead of holding a JSON text. The readers of events
ask here for those inputs, and get what the JSON text would have given: :func:`event_inputs`
returns each event's inputs as a list of records, as ``json.loads`` of its ``inputs_json``.
The serving runtime's sink keeps a flush's one-record events the same way
(:func:`records_table`).

Only what reads back exactly as its JSON texts would is kept so (:func:`input_table` for a
frame, :func:`records_table` for records): columns of floats (missing values allowed), of
integers and of booleans (none missing), and of text (missing allowed), under distinct
names; and only :data:`MIN_ROWS` rows or more. Anything else stays JSON text.

>>> from opsloop.store.database import Database
>>> db = Database("sqlite://", clock=lambda: 5)
>>> with db.write() as connection:
...     batch = insert_input_batch(connection, "api", pa.table({"x": [1.5, None], "k": ["a", "b"]}))
...     event_inputs(connection, [('[{"x": 0.5}]', None, None), (None, batch, 1)])
[[{'x': 0.5}], [{'x': None, 'k': 'b'}]]
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import InvalidArgumentError
from opsloop.store import tables
from opsloop.store.database import clock_of

_batches = tables.prediction_input_batches


_INT64_MAX = np.iinfo(np.int64).max
#: The fewest rows a call keeps as a table: a table costs a fixed part (its schema, its
#: reading back) that only more rows than this repay over the rows' texts.
MIN_ROWS = 64


def _column(series: pd.Series, name: str) -> pa.Array | None:
    kind = series.dtype.kind
    if kind == "f":
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(values).any():
            raise InvalidArgumentError(
                f"inputs: column {name!r} holds an infinite value, which JSON cannot write"
            )
        return pa.array(values, from_pandas=True)
    if kind in "iub" and series.isna().any():
        # JSON would read a missing integer back as a float, and a missing boolean as an
        # object: left to the texts, which give that.
        return None
    if kind in "iu":
        values = series.to_numpy()
        if kind == "u" and len(values) and values.max() > _INT64_MAX:
            return None
        return pa.array(values.astype(np.int64))
    if kind == "b":
        return pa.array(series.to_numpy(dtype=bool))
    if kind == "O":  # objects, text and categories: kept when every value is text
        values = series.astype(object).where(series.notna(), None).tolist()
        if not all(value is None or isinstance(value, str) for value in values):
            return None
        try:
            return pa.array(values, type=pa.string())
        except (pa.ArrowException, UnicodeError):
            return None  # text that is not valid UTF-8 (a lone surrogate): JSON escapes it
    return None


def input_table(frame: pd.DataFrame) -> pa.Table | None:
    """``frame`` as a table of one row per event that reads back as its JSON texts do, or
    ``None`` where some column would not (see the module docstring).

    >>> print(input_table(pd.DataFrame({"n": pd.array([1, None], dtype="Int64")})))
    None
    """
    names = [str(name) for name in frame.columns]
    if not names or len(set(names)) != len(names):
        return None
    arrays = []
    # The columns as the frame yields them (names are distinct here): a positional
    # ``iloc`` per column costs more than many a column's conversion.
    for name, (_, series) in zip(names, frame.items(), strict=True):
        array = _column(series, name)
        if array is None:
            return None
        arrays.append(array)
    return pa.table(arrays, names=names)


def _same_kind(values: list) -> bool:
    """Whether ``values`` (a column of records) read back from a table as ``json.loads``
    gives them: one kind of plain value (missing values only among floats and text), and
    floats finite (JSON writes ``NaN`` and ``Infinity``, a table a missing value)."""
    kinds = {type(value) for value in values}
    missing = type(None) in kinds
    kinds.discard(type(None))
    if len(kinds) > 1:
        return False  # 1 and 1.5 in one column: the table would give 1.0 back for 1
    kind = next(iter(kinds), str)
    if kind is float:
        return bool(np.isfinite(np.array([v for v in values if v is not None])).all())
    if kind in (int, bool):
        return not missing
    return kind is str


def records_table(records: Sequence[dict[str, Any]]) -> pa.Table | None:
    """``records`` (dicts with the same keys in the same order, one per event) as a table
    whose rows read back as ``json.loads(json.dumps(record))`` gives each record, or ``None``
    where some column would not: columns of floats (finite; missing allowed), of integers,
    of booleans, of text (missing allowed), kept as :func:`input_table` keeps a frame's.

    >>> records_table([{"x": 0.1, "k": 2, "c": None}, {"x": None, "k": 3, "c": "a"}]).to_pylist()
    [{'x': 0.1, 'k': 2, 'c': None}, {'x': None, 'k': 3, 'c': 'a'}]
    >>> print(records_table([{"x": 1}, {"x": 1.5}]))
    None
    """
    if not records:
        return None
    names = list(records[0])
    if not all(type(name) is str for name in names):
        return None
    columns = {}
    for name in names:
        values = [record[name] for record in records]
        if not _same_kind(values):
            return None
        columns[name] = values
    return input_table(pd.DataFrame(columns))


def encode_table(table: pa.Table) -> bytes:
    """``table`` as an Arrow IPC stream (:func:`batch_table` reads it back).

    >>> batch_table(encode_table(pa.table({"x": [1.0]}))).to_pylist()
    [{'x': 1.0}]
    """
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def batch_table(blob: bytes) -> pa.Table:
    """The table of a stored batch's inputs."""
    return pa.ipc.open_stream(blob).read_all()


def insert_input_batch(connection: Connection, deployment: str, table: pa.Table) -> int:
    """Keep ``table`` (one row per event) as a batch of ``deployment``'s inputs, inside the
    caller's transaction; return the batch's id."""
    result = connection.execute(
        _batches.insert().values(
            deployment=deployment,
            row_count=table.num_rows,
            inputs_arrow=encode_table(table),
            created_ms=clock_of(connection),
        )
    )
    key = result.inserted_primary_key
    assert key is not None  # a single-row insert always has one
    return int(key[0])


def read_input_batches(connection: Connection, batch_ids: Iterable[int]) -> dict[int, pa.Table]:
    """The tables of the batches ``batch_ids`` (each once), by id."""
    wanted = sorted({int(i) for i in batch_ids})
    found: dict[int, pa.Table] = {}
    for lo in range(0, len(wanted), 500):
        rows = connection.execute(
            sa.select(_batches.c.id, _batches.c.inputs_arrow).where(
                _batches.c.id.in_(wanted[lo : lo + 500])
            )
        ).all()
        found.update((int(batch_id), batch_table(blob)) for batch_id, blob in rows)
    return found


def event_inputs(
    connection: Connection, events: Sequence[tuple[str | None, int | None, int | None]]
) -> list[Any]:
    """The inputs of each event given as ``(inputs_json, input_batch_id, input_row)``: its
    JSON text decoded, or the list of its one record in its batch (missing values as
    ``None``, as JSON's ``null`` decodes)."""
    tables_by_id = read_input_batches(
        connection, (batch for text, batch, _ in events if text is None and batch is not None)
    )
    records = {batch_id: table.to_pylist() for batch_id, table in tables_by_id.items()}
    found: list[Any] = []
    for text, batch_id, row in events:
        if text is not None:
            found.append(json.loads(text))
        elif batch_id is not None and row is not None:
            found.append([records[int(batch_id)][int(row)]])
        else:
            found.append(None)
    return found
