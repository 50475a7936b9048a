"""Prediction inputs as the JSON texts the events table keeps, written and read a column at a
time with Arrow rather than a row at a time with the standard library.

Each event keeps its inputs as one JSON text, a list of records (``[{"x": 1.5}]``), as the
serving runtime writes them. Logging and folding many events spent most of their time
encoding and parsing those texts row by row; here both run over whole columns in Arrow's
compute kernels, and give the same values back bit for bit:

* :func:`row_texts` writes each float as Arrow's shortest text that reads back as the same
  double (the standard library's ``repr`` does the same, with other notation in places:
  ``0.00001`` for ``1e-05``), with ``.0`` kept on whole numbers so that they read back as
  floats. Integers and booleans are written by Arrow too; other columns (text, dates,
  objects) value by value by the standard library, as before.
* :func:`rows_of_texts` parses a batch of texts with Arrow's JSON reader and gives the frame
  of their records, or ``None`` where Arrow would not give what the standard library gives
  (nested values, a text Arrow reads as a timestamp, ``NaN`` tokens, no records at all): the
  caller then parses them one by one.

>>> import pandas as pd
>>> texts = row_texts(pd.DataFrame({"x": [1.0, 1e-5, None], "k": [1, 2, 3], "c": ["a", None, "b"]}))
>>> texts
['[{"x": 1.0, "k": 1, "c": "a"}]', '[{"x": 0.00001, "k": 2, "c": null}]', '[{"x": null, "k": 3, "c": "b"}]']
>>> frame, lengths = rows_of_texts(texts)
>>> frame["x"].tolist()[:2], frame["k"].tolist(), lengths.tolist()
([1.0, 1e-05], [1, 2, 3], [1, 1, 1])
>>> print(rows_of_texts(['[{"x": {"nested": 1}}]']))
None
"""  # noqa: E501 - a doctest's expected output is one line

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from opsloop.errors import InvalidArgumentError

_WHOLE = "^-?[0-9]+$"
# Types whose pandas conversion equals the standard library's values put in a DataFrame.
_PLAIN_TYPES = (pa.float64(), pa.int64(), pa.bool_(), pa.string(), pa.null())


def _float_texts(values: np.ndarray, name: str) -> pa.Array:
    if np.isinf(values).any():
        raise InvalidArgumentError(
            f"inputs: column {name!r} holds an infinite value, which JSON cannot write"
        )
    texts = pc.cast(pa.array(values, from_pandas=True), pa.string())
    # Arrow writes 2.0 as "2", which would read back as an integer.
    whole = pc.match_substring_regex(texts, _WHOLE)
    return pc.if_else(whole, pc.binary_join_element_wise(texts, ".0", ""), texts)


def _column_texts(series: pd.Series, name: str) -> pa.Array:
    """Each value of ``series`` as JSON text (``null`` for a missing one)."""
    kind = series.dtype.kind
    if kind == "f":
        texts = _float_texts(series.to_numpy(dtype=np.float64, na_value=np.nan), name)
    elif kind in "iu":
        texts = pc.cast(pa.array(series, from_pandas=True), pa.string())
    elif kind == "b":
        texts = pc.if_else(pa.array(series, from_pandas=True), "true", "false")
    else:
        plain = series.astype(object).where(series.notna(), None)
        dumps = json.JSONEncoder(default=str, allow_nan=False).encode
        texts = pa.array([dumps(value) for value in plain.tolist()], type=pa.string())
    return pc.fill_null(texts, "null")


def row_texts(frame: pd.DataFrame) -> list[str]:
    """Each row of ``frame`` as the JSON text of a one-record list (column names as text,
    missing values as ``null``).

    >>> row_texts(pd.DataFrame({"on": [True], "when": pd.to_datetime(["2024-01-02"])}))
    ['[{"on": true, "when": "2024-01-02 00:00:00"}]']
    >>> row_texts(pd.DataFrame({"x": [float("inf")]}))
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: inputs: column 'x' holds an infinite value, which JSON cannot write
    """  # noqa: E501 - a doctest's expected output is one line
    if len(frame) == 0:
        return []
    if len(frame.columns) == 0:
        return ["[{}]"] * len(frame)
    pieces: list = []
    for position, name in enumerate(frame.columns):
        key = json.dumps(str(name))
        pieces += [
            f"{'[{' if position == 0 else ', '}{key}: ",
            _column_texts(frame.iloc[:, position], str(name)),
        ]
    pieces.append("}]")
    return pc.binary_join_element_wise(*pieces, "").to_pylist()


def _read(texts: list[str]) -> pa.Array | None:
    """The JSON values of ``texts``, one per text, as one Arrow array (``None`` when Arrow
    cannot read them as one column)."""
    # One line per text, each wrapped in an object (the reader reads objects), in one join.
    body = ('{"v":' + '}\n{"v":'.join(texts) + "}").encode()
    # One block: types are inferred over every text, as a DataFrame infers them over all.
    options = pa_json.ReadOptions(use_threads=False, block_size=len(body) + 1)
    try:
        table = pa_json.read_json(io.BytesIO(body), read_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_columns != 1 or table.num_rows != len(texts):
        return None
    return table.column(0).combine_chunks()


def predictions_of_texts(texts: list, lengths: np.ndarray) -> list | None:
    """The predictions of a batch of outputs (JSON texts ``{"predictions": [...]}``, or
    missing), one per input row: ``lengths`` says how many rows each event had, and an
    output without a prediction per row gives ``None`` for each of its rows. ``None`` when
    Arrow cannot read them as the standard library would.

    >>> predictions_of_texts(['{"predictions": [1, 0]}', None, '{"predictions": [3]}'],
    ...                      np.array([2, 1, 2]))
    [1, 0, None, None, None]
    """
    texts = [text if isinstance(text, str) else "null" for text in texts]
    total = int(lengths.sum())
    if not texts:
        return []
    outputs = _read(texts)
    if outputs is None:
        return None
    if outputs.type == pa.null():
        return [None] * total
    if not pa.types.is_struct(outputs.type):
        return None
    if outputs.type.get_field_index("predictions") < 0:
        return [None] * total
    found = outputs.flatten()[outputs.type.get_field_index("predictions")]
    if found.type == pa.null():
        return [None] * total
    if not pa.types.is_list(found.type) or found.type.value_type not in _PLAIN_TYPES:
        return None
    given = pc.fill_null(pc.list_value_length(found), -1).to_numpy(zero_copy_only=False)
    values = found.flatten().to_pylist()
    if np.array_equal(given, lengths):
        return values  # every output has a prediction per row: the common case, at once
    predictions: list = []
    position = 0
    for count, wanted in zip(given.tolist(), lengths.tolist(), strict=True):
        if count == wanted:
            predictions.extend(values[position : position + count])
        else:
            predictions.extend([None] * wanted)
        position += max(count, 0)
    return predictions


def rows_of_texts(texts: list) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The records of a batch of JSON texts (each a list of records) as one frame, and how
    many records each text held; ``None`` when Arrow cannot give exactly what the standard
    library would (the module docstring says when)."""
    if not texts or not all(isinstance(text, str) for text in texts):
        return None
    lists = _read(texts)
    if lists is None or not pa.types.is_list(lists.type):
        return None
    rows = lists.flatten()
    if lists.null_count or not pa.types.is_struct(rows.type) or rows.type.num_fields == 0:
        return None
    fields = [rows.type.field(i) for i in range(rows.type.num_fields)]
    if rows.null_count or any(field.type not in _PLAIN_TYPES for field in fields):
        return None
    names = [field.name for field in fields]
    if len(set(names)) != len(names):
        return None
    frame = pd.DataFrame(
        {
            name: rows.field(i).to_pandas() if fields[i].type != pa.null() else [None] * len(rows)
            for i, name in enumerate(names)
        }
    )
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    return frame, lengths
