"""Prediction events and labels logged from a table (a CSV or Parquet file's rows), as
:func:`~opsloop.monitoring.event_log.log_predictions` and
:func:`~opsloop.monitoring.event_log.log_labels` log them from Python; ``opsloop monitor
log`` reads the file and calls :func:`log_prediction_table`.

The columns: ``prediction`` (the model's answer, one scalar per row), optionally a
request id column (1 to 64 characters, unique in the table; random ids otherwise), a time
column (milliseconds since the epoch, or a date and time, UTC unless it says otherwise;
the store's clock otherwise) and a label column. Every other column is an input. A table
without the prediction column and with a label column is a table of labels for answers
logged before, joined by its request ids.

Every row is checked before anything is logged (a label's kind against the answer it joins,
a class for a classifier, once that answer is logged: a label refused then leaves the
predictions logged, and the labels alone can be sent again), and a bad cell is named by its
column and its row (rows count from 1, the header not counted: row 1 is a CSV's second line). At most
:data:`MAX_ROWS` rows are logged in one call; they are written in parts of
:data:`PART_ROWS`, so a store failure part way leaves the parts before it logged.

>>> import pandas as pd
>>> from opsloop.monitoring.local_monitoring import Monitoring
>>> # Answered in 1970: their windows closed long ago, so the labels come late.
>>> table = pd.DataFrame({"x": [1.0, 2.0], "prediction": [1, 0], "id": ["a", "b"],
...                       "at": [60_000, 61_000], "label": [1, 1]})
>>> log_prediction_table(Monitoring(db), "api", table, request_id="id", time="at",
...                      labels="label")
TableLogged(predictions=2, labels=LabelReceipt(accepted=2, late=2, duplicate=0, unknown=0, unknown_ids=()))
>>> log_prediction_table(Monitoring(db), "api", table.assign(at=[1, "soon"]), time="at")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: column 'at', row 2: milliseconds since the epoch or a date and time, got 'soon'
"""  # noqa: E501 - a doctest's expected output is one line

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opsloop.errors import InvalidArgumentError
from opsloop.store.label_join import LabelReceipt
from opsloop.store.label_values import checked_label, plain_label

#: The most rows one table may log.
MAX_ROWS = 1_000_000
#: The rows logged by one call of the service.
PART_ROWS = 50_000
# As log_predictions checks them.
_MAX_ID = 64
_LABEL_INDEX = re.compile(r"^labels\[(\d+)\]: ")


@dataclass(frozen=True)
class TableLogged:
    """What :func:`log_prediction_table` logged: the prediction events written, and the
    receipt of the labels (``None`` without a label column)."""

    predictions: int
    labels: LabelReceipt | None


def _where(column: str, row: int) -> str:
    return f"column {column!r}, row {row + 1}"


def _shown(value: object) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 40 else text[:40] + "…"


def _request_ids(frame: pd.DataFrame, column: str) -> list[str]:
    """The table's request ids, each 1 to 64 characters and none repeated."""
    values = frame[column]
    missing = np.flatnonzero(values.isna().to_numpy())
    if len(missing):
        raise InvalidArgumentError(f"{_where(column, missing[0])}: a request id is missing")
    if pd.api.types.is_float_dtype(values.dtype):
        # A CSV column of numeric ids reads as floats once one is missing; whole numbers
        # are the ids written.
        whole = values.to_numpy() == np.floor(values.to_numpy())
        ids = [str(int(v)) if w else str(v) for v, w in zip(values.tolist(), whole, strict=True)]
    else:
        ids = [str(v) for v in values.tolist()]
    lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
    bad = np.flatnonzero((lengths == 0) | (lengths > _MAX_ID))
    if len(bad):
        raise InvalidArgumentError(
            f"{_where(column, bad[0])}: a request id has 1 to {_MAX_ID} characters, "
            f"got {_shown(ids[bad[0]])}"
        )
    repeated = pd.Series(ids).duplicated(keep="first").to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        first = ids.index(ids[row])
        raise InvalidArgumentError(
            f"{_where(column, row)}: request id {_shown(ids[row])} repeats row {first + 1}'s"
        )
    return ids


def _times_ms(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The time column as milliseconds since the epoch."""
    values = frame[column]
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = values if values.dt.tz is not None else values.dt.tz_localize("UTC")
        missing = np.flatnonzero(stamps.isna().to_numpy())
        if len(missing):
            raise InvalidArgumentError(f"{_where(column, missing[0])}: a time is missing")
        return (stamps.astype("datetime64[ns, UTC]").astype(np.int64) // 1_000_000).to_numpy()
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(numbers) | (numbers < 0) | (numbers != np.floor(numbers)))
        if len(bad):
            raise InvalidArgumentError(
                f"{_where(column, bad[0])}: whole milliseconds since the epoch (>= 0), "
                f"got {_shown(values.iloc[bad[0]])}"
            )
        return numbers.astype(np.int64)
    times = np.empty(len(values), dtype=np.int64)
    for row, value in enumerate(values.tolist()):
        text = str(value).strip()
        try:
            if text.isdigit():
                times[row] = int(text)
                continue
            stamp = pd.Timestamp(text)
            if pd.isna(stamp):
                raise ValueError(text)
        except (ValueError, TypeError, OverflowError):
            raise InvalidArgumentError(
                f"{_where(column, row)}: milliseconds since the epoch or a date and time, "
                f"got {_shown(value)}"
            ) from None
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        times[row] = stamp.value // 1_000_000
    return times


def _predictions(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The prediction column, one present scalar per row (a finite number, a bool or a
    text)."""
    values = frame[column]
    missing = np.flatnonzero(values.isna().to_numpy())
    if len(missing):
        raise InvalidArgumentError(f"{_where(column, missing[0])}: a prediction is missing")
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy()
        bad = np.flatnonzero(~np.isfinite(numbers.astype(float)))
        if len(bad):
            raise InvalidArgumentError(
                f"{_where(column, bad[0])}: a prediction must be finite, got {numbers[bad[0]]}"
            )
        return numbers
    for row, value in enumerate(values.tolist()):
        if not isinstance(value, str | bool | int | float | np.generic):
            raise InvalidArgumentError(
                f"{_where(column, row)}: a prediction is a number, a bool or a text, got "
                f"{type(value).__name__}"
            )
    return values.to_numpy(dtype=object)


def _check_labels(frame: pd.DataFrame, column: str) -> None:
    """Each present label's shape (a finite number, a bool or a short text), checked before
    anything is logged; its kind against the answer it joins is checked as it is logged."""
    values = frame[column].to_numpy(dtype=object)
    for row in np.flatnonzero(frame[column].notna().to_numpy()):
        try:
            checked_label(plain_label(values[row]))
        except InvalidArgumentError as error:
            problem = str(error).removeprefix("label: ")
            raise InvalidArgumentError(f"{_where(column, int(row))}: {problem}") from None


def _labels(monitoring, deployment, frame, column, ids, window) -> LabelReceipt:
    """Log the present labels of ``column`` for ``ids``; a checked label's error names its
    column and row."""
    present = np.flatnonzero(frame[column].notna().to_numpy())
    values = frame[column].to_numpy(dtype=object)
    totals = dict.fromkeys(("accepted", "late", "duplicate", "unknown"), 0)
    unknown: list[str] = []
    for start in range(0, len(present), PART_ROWS):
        rows = present[start : start + PART_ROWS]
        try:
            receipt = monitoring.log_labels(
                deployment, [ids[r] for r in rows], values[rows].tolist(), window=window
            )
        except InvalidArgumentError as error:
            found = _LABEL_INDEX.match(str(error))
            if found is None:
                raise
            row = int(rows[int(found.group(1))])
            raise InvalidArgumentError(
                f"{_where(column, row)}: {str(error)[found.end() :]}"
            ) from None
        for name in totals:
            totals[name] += getattr(receipt, name)
        unknown.extend(receipt.unknown_ids)
    return LabelReceipt(**totals, unknown_ids=tuple(unknown))


def log_prediction_table(
    monitoring,
    deployment: str,
    frame: pd.DataFrame,
    *,
    prediction: str = "prediction",
    request_id: str | None = None,
    time: str | None = None,
    labels: str | None = None,
    variant: str = "default",
    window: str = "1h",
) -> TableLogged:
    """Log ``frame``'s rows to ``deployment`` through ``monitoring`` (a
    :class:`~opsloop.monitoring.local_monitoring.Monitoring`, or any service with its
    ``log_predictions`` and ``log_labels``): one prediction event per row with the
    ``prediction`` column's value, the other columns as its inputs (the ``request_id``,
    ``time`` and ``labels`` columns left out), then the ``labels`` column's present values
    joined to those events. Without the prediction column, a ``labels`` column and a
    ``request_id`` column log labels alone. ``window`` says when a window closes, for
    counting late labels.

    >>> from opsloop.monitoring.local_monitoring import Monitoring
    >>> log_prediction_table(Monitoring(db), "api", pd.DataFrame({"x": [1.0]}))
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: no column 'prediction' (the predictions), and no label column to log alone; columns: x
    """  # noqa: E501 - a doctest's expected output is one line
    n = len(frame)
    if n == 0:
        raise InvalidArgumentError("the table has no rows to log")
    if n > MAX_ROWS:
        raise InvalidArgumentError(f"at most {MAX_ROWS:,} rows in one table, got {n:,}; split it")
    for option, name in (("request_id", request_id), ("time", time), ("labels", labels)):
        if name is not None and name not in frame.columns:
            raise InvalidArgumentError(f"{option}: no column {name!r} in the table")
    columns = ", ".join(map(str, frame.columns[:20])) + (" …" if len(frame.columns) > 20 else "")
    ids = _request_ids(frame, request_id) if request_id is not None else None
    if prediction not in frame.columns:
        if labels is None:
            raise InvalidArgumentError(
                f"no column {prediction!r} (the predictions), and no label column to log "
                f"alone; columns: {columns}"
            )
        if ids is None:
            raise InvalidArgumentError(
                f"labels alone (no column {prediction!r}) are joined by request id; name "
                "the request id column"
            )
        _check_labels(frame, labels)
        return TableLogged(0, _labels(monitoring, deployment, frame, labels, ids, window))
    if labels is not None:
        _check_labels(frame, labels)
    answers = _predictions(frame, prediction)
    times = _times_ms(frame, time) if time is not None else None
    kept = [prediction, *(c for c in (request_id, time, labels) if c is not None)]
    inputs = frame.drop(columns=kept)
    if inputs.shape[1] == 0:
        raise InvalidArgumentError(f"no input column: every column is one of {', '.join(kept)}")
    logged: list[str] = []
    for start in range(0, n, PART_ROWS):
        part = slice(start, start + PART_ROWS)
        logged.extend(
            monitoring.log_predictions(
                deployment,
                inputs.iloc[part].reset_index(drop=True),
                answers[part],
                variant=variant,
                request_ids=None if ids is None else ids[part],
                at_ms=None if times is None else times[part],
            )
        )
    receipt = None
    if labels is not None:
        receipt = _labels(monitoring, deployment, frame, labels, logged, window)
    return TableLogged(n, receipt)
