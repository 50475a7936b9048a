"""Prediction events and labels logged from Python: for models served elsewhere and for
batch jobs, the same rows the serving runtime records.

:func:`log_predictions` writes one event per row into the store's ``prediction_events``
table (role ``primary``, the output as ``{"predictions": [p]}``, with ``"probabilities"`` and
``"classes"`` when the model's probabilities are given, as the serving runtime writes
them), so the windows, the labels and
:func:`opsloop.serving.prediction_events.read_prediction_events` see them as they see served
answers. The inputs of a call of many rows are kept once, column by column, where they
read back as their JSON texts would (:mod:`.columnar_inputs`): logging and folding then
handle each column once rather than each event's text.

:func:`log_labels` joins labels to those events by request id, and says what it did with
each in a :class:`LabelReceipt`:

* **accepted**: the deployment answered the id and it had no label yet: the label is kept
  (in ``prediction_feedback``, as the feedback endpoint keeps it);
* **late** (also accepted): the window of the answer had already closed when the label came:
  an evaluation of that window made before it does not include it, later ones do;
* **duplicate**: the id already has a label (or appears twice in the call): the first label
  stands, the new one is not kept;
* **unknown**: no answer of the deployment has the id: not kept; the receipt lists the ids,
  so they can be sent again once the answer is recorded.

Labels sent to the data plane's feedback endpoint are joined the same way
(:func:`join_labels`), and counted with these; there a duplicate label is refused (409) and
an unknown id is a 404.

The counts add up per deployment in the monitor's state (:func:`label_counts`). Joins of
one deployment's labels take turns on that row (several processes labelling at once on
PostgreSQL still keep one label per answer and lose no count). The join and the counts are
the store's (:mod:`opsloop.store.label_join`, importable here): the serving layer's feedback
joins labels with them too, and serving does not import the monitoring.

>>> db = Database("sqlite://", clock=lambda: 10_000_000)
>>> ids = log_predictions(db, "api", [{"x": 1.0}, {"x": 2.0}], [1, 0],
...                       request_ids=["a", "b"], at_ms=9_000_000)
>>> log_labels(db, "api", ["a", "a", "zz"], [1, 0, 1])
LabelReceipt(accepted=1, late=0, duplicate=1, unknown=1, unknown_ids=('zz',))
>>> label_counts(db, "api")
{'accepted': 1, 'late': 0, 'duplicate': 1, 'unknown': 1}
"""

from __future__ import annotations

import json
import os
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.data.reference_scores import probability_matrix
from opsloop.errors import InvalidArgumentError, NotFoundError
from opsloop.monitoring.columnar_inputs import MIN_ROWS, input_table
from opsloop.monitoring.json_columns import row_texts
from opsloop.monitoring.reference import reference_classes
from opsloop.monitoring.windowing import Windowing
from opsloop.serving.process_samples import ProcessSampler
from opsloop.store import tables
from opsloop.store.database import Database, clock_of
from opsloop.store.event_insert import insert_event_columns
from opsloop.store.input_batches import insert_input_batch
from opsloop.store.label_join import (
    LABEL_COUNTS,
    LABELLED_ROLES,
    LabelReceipt,
    join_labels,
    label_counts,
)
from opsloop.store.label_values import CLASSES_NAMED, checked_label, plain_label
from opsloop.store.waiting_feedback import JoinedFeedback, join_waiting

_events, _feedback = tables.prediction_events, tables.prediction_feedback
_MAX_ID = 64


def _records(inputs: Any) -> tuple[int, pa.Table | None, list[str] | None]:
    """How many rows ``inputs`` has, and their values: as one table kept column by column
    where that reads back as their JSON texts would (:mod:`.columnar_inputs`), else as one
    JSON text per row."""
    if isinstance(inputs, pd.DataFrame):
        frame = inputs
    elif isinstance(inputs, Sequence) and all(isinstance(r, dict) for r in inputs):
        frame = pd.DataFrame.from_records(list(inputs))
    else:
        raise InvalidArgumentError(
            f"inputs: a DataFrame or a list of records (dicts), got {type(inputs).__name__}"
        )
    if len(frame) == 0:
        return 0, None, []
    table = input_table(frame) if len(frame) >= MIN_ROWS else None
    if table is not None:
        return len(frame), table, None
    # Nulls as JSON null (json.dumps would write NaN, which is not JSON). pandas' own
    # to_json is not used: it keeps 10 significant digits, and a logged float must come back
    # bit for bit.
    lines = row_texts(frame)
    return len(lines), None, lines


def _plain(value: Any) -> Any:
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value != value:
        return None
    return value


def _known(label: Any) -> Any:
    """``label`` with a float NaN (an unknown outcome) as ``None``, in a list too."""
    if isinstance(label, list):
        return [_plain(v) for v in label]
    return _plain(label)


def _outputs(predictions: Sequence | np.ndarray) -> list[str]:
    """Each prediction as the runtime's output JSON, ``{"predictions": [p]}``."""
    array = np.asarray(predictions)
    if array.dtype.kind in "iu" or (array.dtype.kind == "f" and np.all(np.isfinite(array))):
        # Numbers written as JSON writes them (repr), without a json.dumps call per row.
        return [f'{{"predictions": [{v!r}]}}' for v in array.reshape(-1).tolist()]
    values = np.asarray(predictions, dtype=object).reshape(-1).tolist()
    return [json.dumps({"predictions": [_plain(v)]}) for v in values]


def _scored_outputs(
    predictions: Sequence | np.ndarray, probabilities: Any, classes: Sequence | None
) -> list[str]:
    """Each prediction with its row of ``probabilities`` and the ``classes``, as the
    runtime's output JSON. Without ``classes`` the columns are named by their positions,
    ``0 .. k-1`` (the window's estimate matches them with a reference's classes by those
    names), and the output says these are no class names (``"classes_named": false``): a
    model answering the classes -1 and 1 takes the label -1.

    >>> _scored_outputs([1], [0.75], None)
    ['{"predictions": [1], "probabilities": [[0.25, 0.75]], "classes": [0, 1], "classes_named": false}']
    >>> _scored_outputs(["yes"], [[0.25, 0.75]], ["no", "yes"])
    ['{"predictions": ["yes"], "probabilities": [[0.25, 0.75]], "classes": ["no", "yes"]}']
    """  # noqa: E501 - a doctest's expected output is one line
    array = probability_matrix(probabilities, "input row")
    names = list(range(array.shape[1])) if classes is None else [_plain(c) for c in classes]
    if len(names) != array.shape[1]:
        raise InvalidArgumentError(
            f"classes: {len(names)} classes for {array.shape[1]} probability columns; give "
            "one per column"
        )
    values = [_plain(v) for v in np.asarray(predictions, dtype=object).reshape(-1).tolist()]
    if len(values) != len(array):
        raise InvalidArgumentError(
            f"probabilities: {len(array)} rows for {len(values)} predictions; give one per row"
        )
    unnamed = {} if classes is not None else {CLASSES_NAMED: False}
    return [
        json.dumps({"predictions": [v], "probabilities": [row], "classes": names, **unnamed})
        for v, row in zip(values, array.tolist(), strict=True)
    ]


def _column_classes(
    db: Database, deployment: str, predictions: Sequence | np.ndarray, n_columns: int
) -> list | None:
    """The classes naming ``n_columns`` probability columns logged without ``classes=``:
    the classes of ``deployment``'s reference when it keeps probabilities for exactly as
    many classes and every known prediction is one of them (the same model's columns, in
    the order the reference was given them, whatever part of them a batch predicts), else
    ``None``: the default ``0 .. k-1``, as before. The events are recorded either way; a
    window whose columns match no reference says why it has no estimate
    (``estimate_note``). A missing prediction (``None``, NaN) names no class and is left
    out; a bool is the class it equals (``True == 1``), as numpy compares them.

    >>> db = Database("sqlite://")
    >>> _column_classes(db, "api", [0, 1, None], 2) is None
    True
    >>> _column_classes(db, "api", ["no", "yes"], 2) is None
    True
    """
    values = [_plain(v) for v in np.asarray(predictions, dtype=object).reshape(-1).tolist()]
    try:
        known = {v for v in values if v is not None}
    except TypeError:
        # A prediction that is a list or a dict (multi-output) names no column: keep the
        # default, as the events were always recorded.
        return None
    try:
        # The classes alone, without the reference's sample: this runs for every call.
        classes = reference_classes(db, deployment)
    except NotFoundError:
        return None
    if classes is None or len(classes) != n_columns:
        return None
    try:
        named = set(classes)
    except TypeError:
        return None
    return list(classes) if known <= named else None


def _checked_ids(request_ids: Sequence[str], n: int, field: str = "request_ids") -> list[str]:
    ids = [str(i) for i in request_ids]
    if len(ids) != n:
        raise InvalidArgumentError(f"{field}: {len(ids)} ids for {n} rows; give one per row")
    too_long = [i for i in ids if not 0 < len(i) <= _MAX_ID]
    if too_long:
        raise InvalidArgumentError(
            f"{field}: an id must have 1 to {_MAX_ID} characters, got {too_long[0]!r}"
        )
    return ids


def _per_row(value: Any, n: int, field: str, dtype: Any) -> np.ndarray:
    """``value`` (one for all rows, or one per row) as ``n`` values.

    >>> _per_row([1.0, 2.0], 3, "latency_ms", float)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: latency_ms: 2 values for 3 rows; give one, or one per row
    """
    array = np.asarray(value, dtype=dtype)
    if array.ndim > 1 or (array.ndim == 1 and len(array) != n):
        raise InvalidArgumentError(
            f"{field}: {array.size} values for {n} rows; give one, or one per row"
        )
    return np.broadcast_to(array, (n,))


# One sampler per store and process: a sample is due at most every SAMPLE_INTERVAL_S of
# the store's clock, and a forked child is a worker of its own (``host:pid``).
_samplers: weakref.WeakKeyDictionary[Database, tuple[int, ProcessSampler]] = (
    weakref.WeakKeyDictionary()
)


def _sample_process(connection: Connection, db: Database, deployment: str) -> None:
    """Record this process's memory and CPU time for ``deployment`` when a sample is due, as
    a serving worker does when it writes its events (:mod:`opsloop.serving.process_samples`)."""
    pid, sampler = _samplers.get(db, (None, None))
    if pid != os.getpid() or sampler is None:
        sampler = ProcessSampler()
        _samplers[db] = (os.getpid(), sampler)
    rows = sampler.rows([deployment], at_ms=clock_of(connection))
    if rows:
        connection.execute(tables.process_samples.insert(), rows)


def log_predictions(
    db: Database,
    deployment: str,
    inputs: pd.DataFrame | Sequence[dict],
    predictions: Sequence | np.ndarray,
    *,
    variant: str = "default",
    request_ids: Sequence[str] | None = None,
    at_ms: int | Sequence[int] | np.ndarray | None = None,
    latency_ms: float | Sequence[float] | np.ndarray = 0.0,
    model: str = "external",
    version: int = 0,
    probabilities: Sequence | np.ndarray | None = None,
    classes: Sequence | None = None,
    sample_process: bool = True,
    read_joined: Callable[[list[JoinedFeedback]], None] | None = None,
    read_joined_labels: Callable[[Any, list[JoinedFeedback]], Callable[[], None]] | None = None,
) -> list[str]:
    """Record one prediction event per row of ``inputs`` with its prediction; return the
    request ids (random ones when ``request_ids`` is not given: give your own to join labels
    later by them and to make the windows' samples reproducible). ``at_ms`` (one time or
    one per row) defaults to the store's clock. A classifier's ``probabilities`` (one row
    per input row, one column per class of ``classes``; or the second class's probability
    alone) let the monitoring estimate its metrics before the labels arrive
    (:mod:`.window_estimate`). Without ``classes`` the columns are the deployment's
    reference's classes when it keeps ``k`` of them and they hold every known prediction,
    else ``0 .. k-1``, positions that name no class (a label is then not checked against
    them, see :func:`log_labels`); the events are recorded either way, and a window whose columns no
    reference matches says why it has no estimate (``metrics["estimate_note"]``). Unless
    ``sample_process`` is false, the process's memory and CPU time are recorded with the
    events (at most every 10 s of the store's clock), as a serving worker records its own,
    for the windows' software metrics
    (:mod:`.process_metrics`). Feedback that waited for these answers (sent through the
    feedback endpoint before they were logged, :mod:`opsloop.store.waiting_feedback`) is
    joined in the same transaction, where ``read_joined_labels`` reads its labels into the
    rollouts' gates (what it returns runs once the transaction committed); ``read_joined``
    then reads the rest into the deployment's rollouts
    (:class:`~.local_monitoring.LocalMonitoring` passes the rollouts' readers).

    ``db`` is an empty store:

    >>> log_predictions(db, "api", [{"x": 1}], [0, 1])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: predictions: 2 values for 1 input rows; give one per row
    """
    if not isinstance(deployment, str) or not deployment:
        raise InvalidArgumentError(f"deployment: a non-empty name, got {deployment!r}")
    n, table, lines = _records(inputs)
    if probabilities is None:
        if classes is not None:
            raise InvalidArgumentError("classes: name the columns of probabilities; give those")
        outputs = _outputs(predictions)
    else:
        if classes is None:
            n_columns = probability_matrix(probabilities, "input row").shape[1]
            classes = _column_classes(db, deployment, predictions, n_columns)
        outputs = _scored_outputs(predictions, probabilities, classes)
    if len(outputs) != n:
        raise InvalidArgumentError(
            f"predictions: {len(outputs)} values for {n} input rows; give one per row"
        )
    ids = (
        [uuid.uuid4().hex for _ in range(n)]
        if request_ids is None
        else _checked_ids(request_ids, n)
    )
    latency = _per_row(latency_ms, n, "latency_ms", float)
    if n and (not np.all(np.isfinite(latency)) or np.any(latency < 0)):
        raise InvalidArgumentError("latency_ms: must be finite and non-negative")
    joined: list[JoinedFeedback] = []
    then: Callable[[], None] | None = None
    with db.write() as connection:
        now = clock_of(connection)
        times = _per_row(now if at_ms is None else at_ms, n, "at_ms", np.int64)
        if n:
            shared = {
                "deployment": deployment,
                "variant": variant,
                "role": "primary",
                "model": model,
                "version": int(version),
            }
            columns = {
                "request_id": ids,
                "output_json": outputs,
                "latency_ms": latency.astype(float).tolist(),
                "at_ms": times.astype(np.int64).tolist(),
            }
            if table is None:
                columns["inputs_json"] = lines
            else:
                shared["input_batch_id"] = insert_input_batch(connection, deployment, table)
                columns["input_row"] = list(range(n))
            insert_event_columns(connection, columns, shared)
            joined = join_waiting(connection, {deployment: ids})
            if joined and read_joined_labels is not None:
                then = read_joined_labels(connection, joined)
                joined = [replace(item, label=None) for item in joined if item.reward is not None]
            if sample_process:
                _sample_process(connection, db, deployment)
    if then is not None:
        then()
    if joined and read_joined is not None:
        # Feedback that came before these answers, joined now: read as feedback is.
        read_joined(joined)
    return ids


def log_labels(
    db: Database,
    deployment: str,
    request_ids: Sequence[str],
    labels: Sequence | np.ndarray,
    *,
    windowing: Windowing | None = None,
    actor: str = "monitoring",
) -> LabelReceipt:
    """Join ``labels`` to ``deployment``'s answers by request id (the module docstring says
    what happens to late, duplicate and unknown ones); ``windowing`` says when a window
    closes (for counting late labels). Each label is one scalar (a finite number, a bool, a
    short text: :mod:`opsloop.store.label_values`) for an answer to one record, or a list
    of one per record for an answer to several (``None`` or NaN: not known); numpy values
    and tuples are taken as the plain values and lists they hold.

    Each label is checked against the answer its id got, when that answer is recorded:
    one value per record it answered, each of the model's kind (a class for a classifier's
    text classes, or its integer classes where the answer carries them beside its
    probabilities; a number otherwise, as for a regression), and one of the classes the
    answer names where it names them (given as ``classes=``, or the reference's; columns
    logged without names name none) (:func:`~opsloop.store.label_values.label_for_answer`).
    A label of integer classes is kept as the class it equals (``0.0`` as ``0``). A call with one label that does
    not fit is refused whole with :class:`~opsloop.errors.InvalidArgumentError` naming
    ``labels[i]`` and the rule, before anything is kept or counted; send it again without
    (or with a fixed) label. A label whose id has no recorded answer yet is not kept (an
    ``unknown`` id of the receipt), so it is checked when sent again after its answer is
    recorded. An answer recorded without predictions says neither count nor kind: its
    label's shape alone is checked here, and the evaluation, reading it back
    (:func:`~opsloop.store.label_values.per_record_labels`), leaves out and counts one that
    does not fit (``labels_rejected``).

    >>> scores = [[0.2, 0.8], [0.9, 0.1]]
    >>> _ = log_predictions(
    ...     db, "api", [{"x": 1.0}, {"x": 2.0}], [1, 0], probabilities=scores, classes=[0, 1],
    ...     request_ids=["a", "b"],
    ... )
    >>> log_labels(db, "api", ["a", "b"], [1, 0.5])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: labels[1]: the model answers classes (integers); give a class, got 0.5
    >>> log_labels(db, "api", ["a"], [1, 2])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: labels: 2 labels for 1 request ids; give one per id
    >>> log_labels(db, "api", ["a", "b"], [1, float("inf")])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: labels[1]: must be finite, got inf
    """  # noqa: E501 - a doctest's expected output is one line
    windowing = windowing or Windowing()
    if isinstance(labels, np.ndarray):
        # A 2-d array holds one row of per-record values per id.
        given = labels.tolist() if labels.ndim >= 1 else [labels.item()]
    else:
        given = list(labels)
    values = [_known(plain_label(v)) for v in given]
    ids = [str(i) for i in request_ids]
    if len(values) != len(ids):
        raise InvalidArgumentError(
            f"labels: {len(values)} labels for {len(ids)} request ids; give one per id"
        )
    for at, value in enumerate(values):
        if value is not None:
            checked_label(value, field=f"labels[{at}]")
    texts = [json.dumps(v) for v in values]  # checked above: scalars JSON writes
    with db.write() as connection:
        receipt = join_labels(connection, deployment, ids, texts, windowing=windowing, actor=actor)
    return receipt


def labelled_events(
    db: Database, deployment: str, variant: str, start_ms: int, end_ms: int, *columns: str
) -> list[tuple]:
    """The primary answers and batch-scored rows of ``variant`` in ``[start_ms, end_ms)``
    that have a label, in event order: each row holds the events' ``columns`` and then
    the label's JSON.

    >>> labelled_events(db, "api", "default", 0, 10, "output_json")
    []
    """
    query = (
        sa.select(*(_events.c[name] for name in columns), _feedback.c.label_json)
        .select_from(
            _events.join(
                _feedback,
                sa.and_(
                    _feedback.c.request_id == _events.c.request_id,
                    _feedback.c.deployment == _events.c.deployment,
                ),
            )
        )
        .where(
            _events.c.deployment == deployment,
            _events.c.variant == variant,
            _events.c.role.in_(LABELLED_ROLES),
            _events.c.at_ms >= start_ms,
            _events.c.at_ms < end_ms,
            _feedback.c.label_json.is_not(None),
        )
        .order_by(_events.c.at_ms, _events.c.id)
    )
    with db.read() as connection:
        return [tuple(row) for row in connection.execute(query).all()]


#: The request ids one query of :func:`logged_request_ids` asks about.
_IDS_PER_QUERY = 500


def logged_request_ids(db: Database, deployment: str, request_ids: Sequence[str]) -> set[str]:
    """The ids among ``request_ids`` that already have a prediction event of
    ``deployment`` (any variant or role): an id names one answer, so a file logged twice is
    refused by them rather than logged again. One indexed query per 500 ids.

    >>> _ = log_predictions(db, "ids", [{"x": 1.0}], [0], request_ids=["r1"])
    >>> logged_request_ids(db, "ids", ["r1", "r2"]), logged_request_ids(db, "other", ["r1"])
    ({'r1'}, set())
    """
    found: set[str] = set()
    unique = list(dict.fromkeys(str(i) for i in request_ids))
    with db.read() as connection:
        for start in range(0, len(unique), _IDS_PER_QUERY):
            chunk = unique[start : start + _IDS_PER_QUERY]
            found.update(
                connection.execute(
                    sa.select(_events.c.request_id)
                    .where(_events.c.deployment == deployment, _events.c.request_id.in_(chunk))
                    .distinct()
                ).scalars()
            )
    return found


__all__ = [
    "LABEL_COUNTS",
    "LabelReceipt",
    "join_labels",
    "label_counts",
    "labelled_events",
    "log_labels",
    "log_predictions",
    "logged_request_ids",
]
