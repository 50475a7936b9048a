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

Every row is checked before anything is logged: each cell's shape, each label's kind
against its own row's answer (a number for a number, a text class for a text), and that no
request id is logged for the deployment already (a file logged twice is refused, not logged
twice); a bad cell is named by its column and its row (rows count from 1, the header not
counted: row 1 is a CSV's second line). At most :data:`MAX_ROWS` rows are logged in one
call. What is not all-or-nothing: the rows are written in parts of :data:`PART_ROWS`, the
labels after the predictions, each part in its own transaction, so only a store failure
part way (not a bad cell) leaves the parts before it logged; logging the file again is then
refused by its ids, and the rows not logged can be sent alone. A file of labels alone is
checked against the answers it joins in the store, part by part.

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
from opsloop.store.label_values import label_for_answer, plain_label

#: The most rows one table may log.
MAX_ROWS = 1_000_000
#: The latest time a row may carry: 9999-12-31T23:59:59.999Z, in ms since the epoch.
MAX_TIME_MS = 253_402_300_799_999
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


def _time_problem(column: str, row: int, value: object) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{_where(column, row)}: a time from 1970 to 9999 (whole milliseconds since the "
        f"epoch, 0 to {MAX_TIME_MS}, or a date and time), got {_shown(value)}"
    )


def _times_ms(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The time column as milliseconds since the epoch, each from 0 to :data:`MAX_TIME_MS`
    (bounded before any cast: 1e30 would wrap to a negative int64)."""
    values = frame[column]
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = values if values.dt.tz is not None else values.dt.tz_localize("UTC")
        missing = np.flatnonzero(stamps.isna().to_numpy())
        if len(missing):
            raise InvalidArgumentError(f"{_where(column, missing[0])}: a time is missing")
        # In milliseconds, never nanoseconds: a datetime64[ms] column can hold the year 3000.
        times = stamps.dt.tz_convert("UTC").dt.as_unit("ms").astype(np.int64).to_numpy()
        before = np.flatnonzero((times < 0) | (times > MAX_TIME_MS))
        if len(before):
            raise _time_problem(column, int(before[0]), values.iloc[before[0]])
        return times
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(numbers) | (numbers < 0) | (numbers > MAX_TIME_MS)
            bad |= numbers != np.floor(numbers)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _time_problem(column, row, values.iloc[row])
        # Integers are read exactly (a float64 holds every whole number up to 2**53).
        return (
            values.to_numpy(dtype=np.int64)
            if values.dtype.kind in "iu"
            else numbers.astype(np.int64)
        )
    times = np.empty(len(values), dtype=np.int64)
    for row, value in enumerate(values.tolist()):
        text = str(value).strip()
        if text.isdigit():
            if len(text) > 15 or int(text) > MAX_TIME_MS:
                raise _time_problem(column, row, value)
            times[row] = int(text)
            continue
        try:
            stamp = pd.Timestamp(text)
            if pd.isna(stamp):
                raise ValueError(text)
        except (ValueError, TypeError, OverflowError):
            raise InvalidArgumentError(
                f"{_where(column, row)}: milliseconds since the epoch or a date and time, "
                f"got {_shown(value)}"
            ) from None
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        # The stamp's own unit read as milliseconds: ``.value`` (nanoseconds) cannot hold a
        # date before 1677 or after 2262.
        times[row] = stamp.tz_convert("UTC").asm8.astype("datetime64[ms]").astype(np.int64)
        if not 0 <= times[row] <= MAX_TIME_MS:
            raise _time_problem(column, row, value)
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


def _as_number(text: str) -> int | float | None:
    """``text`` as the finite number it writes, else ``None``."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def _checked_labels(
    frame: pd.DataFrame, column: str, answers: np.ndarray | None
) -> tuple[np.ndarray, list]:
    """The rows of ``column`` holding a label and their labels, each checked before
    anything is logged: its shape (a finite number, a bool or a short text) and, where
    ``answers`` (the row's own prediction) is given, its kind against that answer, as
    :func:`~opsloop.store.label_values.label_for_answer` judges it when it is joined. A
    label written as a number in a text column (a CSV column holding a text anywhere
    reads every cell as text) is that number where its row's answer is a number."""
    present = np.flatnonzero(frame[column].notna().to_numpy())
    values = frame[column].to_numpy(dtype=object)
    kept = []
    for row in present:
        value = plain_label(values[row])
        answer = None if answers is None else plain_label(answers[row])
        if isinstance(value, str) and answer is not None and not isinstance(answer, str):
            number = _as_number(value.strip())
            value = value if number is None else number
        known = None if answer is None else [answer]
        kept.append(label_for_answer(value, 1, known, field=_where(column, int(row))))
    return present, kept


def _labels(monitoring, deployment, column, rows, values, ids, window) -> LabelReceipt:
    """Log the labels ``values`` of the table's ``rows`` for ``ids`` (one per row of the
    table); a label the store refuses is named by its column and row."""
    totals = dict.fromkeys(("accepted", "late", "duplicate", "unknown"), 0)
    unknown: list[str] = []
    for start in range(0, len(rows), PART_ROWS):
        part = rows[start : start + PART_ROWS]
        try:
            receipt = monitoring.log_labels(
                deployment,
                [ids[r] for r in part],
                values[start : start + PART_ROWS],
                window=window,
            )
        except InvalidArgumentError as error:
            found = _LABEL_INDEX.match(str(error))
            if found is None:
                raise
            row = int(part[int(found.group(1))])
            raise InvalidArgumentError(
                f"{_where(column, row)}: {str(error)[found.end() :]}"
            ) from None
        for name in totals:
            totals[name] += getattr(receipt, name)
        unknown.extend(receipt.unknown_ids)
    return LabelReceipt(**totals, unknown_ids=tuple(unknown))


def _refuse_logged_ids(monitoring, deployment: str, column: str, ids: list[str]) -> None:
    """Refuse the table when one of its request ids is already logged for ``deployment``
    (the same file logged twice would log each answer twice), naming the first such row."""
    logged = monitoring.logged_request_ids(deployment, ids)
    if logged:
        row = next(r for r, i in enumerate(ids) if i in logged)
        raise InvalidArgumentError(
            f"{_where(column, row)}: request id {_shown(ids[row])} is already logged for "
            f"{deployment!r} ({len(logged)} of the table's ids are); nothing was logged. "
            "To add labels to answers logged before, log a file of request ids and labels "
            "without the prediction column"
        )


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
        rows, values = _checked_labels(frame, labels, None)
        return TableLogged(0, _labels(monitoring, deployment, labels, rows, values, ids, window))
    answers = _predictions(frame, prediction)
    times = _times_ms(frame, time) if time is not None else None
    if labels is not None:
        label_rows, label_values = _checked_labels(frame, labels, answers)
    kept = [prediction, *(c for c in (request_id, time, labels) if c is not None)]
    inputs = frame.drop(columns=kept)
    if inputs.shape[1] == 0:
        raise InvalidArgumentError(f"no input column: every column is one of {', '.join(kept)}")
    if ids is not None:
        _refuse_logged_ids(monitoring, deployment, request_id, ids)
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
        receipt = _labels(monitoring, deployment, labels, label_rows, label_values, logged, window)
    return TableLogged(n, receipt)
