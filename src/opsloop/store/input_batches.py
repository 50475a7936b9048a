"""The inputs of events logged together, kept once per batch, column by column.

:func:`opsloop.monitoring.log_predictions` writes a batch's input rows as one Arrow IPC
stream in the ``prediction_input_batches`` table, and each of its events points at its row
(``input_batch_id``, ``input_row``) instead of holding a JSON text. The readers of events
ask here for those inputs, and get what the JSON text would have given: :func:`event_inputs`
returns each event's inputs as a list of records, as ``json.loads`` of its ``inputs_json``.

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

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.store import tables
from opsloop.store.database import clock_of

_batches = tables.prediction_input_batches


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
    return int(result.inserted_primary_key[0])


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
