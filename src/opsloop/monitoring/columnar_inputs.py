"""Inputs kept column by column: which frames :func:`~.event_log.log_predictions` can keep as
one Arrow table per batch, and the frame of a fold's events whose inputs are kept so.

A batch is kept column by column only where that gives back exactly what its JSON texts
(:func:`~.json_columns.row_texts`) would: columns of floats (missing values allowed), of
integers and of booleans (none missing), and of text (missing allowed), under distinct
names; and only a batch of at least :data:`MIN_ROWS` rows. Any other is written as JSON
texts, as before. The rule is the store's (:func:`opsloop.store.input_batches.input_table`),
which the serving runtime's event sink follows too for a flush's events of one record.

When folding, :func:`columnar_frame` gives the frame of a batch of events straight from
their tables when all of them were kept column by column under one schema. Otherwise
(events kept as text among them, or batches whose columns differ)
:func:`event_texts` writes their rows back as JSON texts and the fold parses the whole batch
as it parses texts, so the frame is the same as if every event had been kept as text.

>>> import pandas as pd
>>> table = input_table(pd.DataFrame({"x": [1.5, None], "k": [1, 2], "c": ["a", None]}))
>>> table.schema.types
[DataType(double), DataType(int64), DataType(string)]
>>> print(input_table(pd.DataFrame({"when": pd.to_datetime(["2024-01-02"])})))
None
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from opsloop.monitoring.json_columns import row_texts
from opsloop.store.input_batches import MIN_ROWS, input_table

__all__ = ["MIN_ROWS", "columnar_frame", "event_texts", "input_table"]


def _to_pandas(column: pa.ChunkedArray) -> pd.Series | list:
    # A column with no value at all is parsed from JSON as nulls of no type: None each.
    if column.null_count == len(column):
        return [None] * len(column)
    return column.combine_chunks().to_pandas()


def columnar_frame(
    batch_ids: np.ndarray, rows: np.ndarray, tables: dict[int, pa.Table]
) -> pd.DataFrame | None:
    """The input rows of events kept as ``rows`` of the batches ``batch_ids`` (their
    ``tables``), in event order; ``None`` when the batches' columns differ.

    >>> a = pa.table({"x": [1.0, 2.0]})
    >>> columnar_frame(np.array([7, 7]), np.array([1, 0]), {7: a})["x"].tolist()
    [2.0, 1.0]
    >>> print(columnar_frame(np.array([7, 8]), np.array([0, 0]), {7: a, 8: pa.table({"x": [1]})}))
    None
    """
    order = list(dict.fromkeys(batch_ids.tolist()))
    schema = tables[order[0]].schema
    if any(not tables[batch_id].schema.equals(schema) for batch_id in order[1:]):
        return None
    offsets = {}
    total = 0
    for batch_id in order:
        offsets[batch_id] = total
        total += tables[batch_id].num_rows
    starts = np.array([offsets[batch_id] for batch_id in batch_ids.tolist()], dtype=np.int64)
    combined = pa.concat_tables([tables[batch_id] for batch_id in order])
    taken = combined.take(pa.array(starts + rows.astype(np.int64)))
    return pd.DataFrame({name: _to_pandas(taken.column(name)) for name in taken.column_names})


def event_texts(
    texts: list, batch_ids: np.ndarray, rows: np.ndarray, tables: dict[int, pa.Table]
) -> list:
    """Each event's inputs as JSON text: its own, or its row of its batch written as the
    text :func:`~.json_columns.row_texts` gives.

    >>> event_texts(['[{"y": 1}]', None], np.array([None, 3]), np.array([None, 0]),
    ...             {3: pa.table({"x": [0.5]})})
    ['[{"y": 1}]', '[{"x": 0.5}]']
    """
    written: dict[int, list[str]] = {}
    found = []
    for text, batch_id, row in zip(texts, batch_ids.tolist(), rows.tolist(), strict=True):
        if isinstance(text, str) or batch_id is None:
            found.append(text)
            continue
        batch_id = int(batch_id)
        if batch_id not in written:
            table = tables[batch_id]
            written[batch_id] = row_texts(
                pd.DataFrame({name: table.column(name).to_pandas() for name in table.column_names})
            )
        found.append(written[batch_id][int(row)])
    return found
