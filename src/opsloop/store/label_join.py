"""Labels joined to the answers they are about, by request id, and counted.

A label is kept in ``prediction_feedback`` when the deployment answered its request id
(role ``primary``, or ``batch`` for a row of ``opsloop score``: :data:`LABELLED_ROLES`) and
the answer has no label yet. :func:`join_labels` says what it did
with each label in a :class:`LabelReceipt`: **accepted** (kept), of which **late** (the
window of the answer, by the caller's :class:`~.windowing.Windowing`, had closed when the
label came), **duplicate** (the answer has a label, or the id appears twice: the first
stands) and **unknown** (no answer has the id: not kept). The counts add up per deployment
in the monitor's state (:func:`label_counts`); joins of one deployment's labels take turns
on that row, so several processes labelling at once keep one label per answer and lose no
count.

It lives in the state layer, with the tables it acts on, because two layers above join
labels and must join them one way: the monitoring (:func:`opsloop.monitoring.log_labels`)
and the serving layer's feedback (:func:`opsloop.serving.record_feedback`), which must not
import the monitoring (the monitoring imports serving; the dependency goes one way).

An answer at 1 s is in the hour-long window ``[0, 1 h)``; one at 1 h + 1 s in the next. At
1 h + 2 s the first one's window has closed, so its label is late:

>>> from opsloop.store.database import Database
>>> from opsloop.store.event_insert import insert_event_columns
>>> db = Database("sqlite://", clock=lambda: 3_602_000)
>>> with db.write() as connection:
...     insert_event_columns(connection, {"request_id": ["a", "b"], "at_ms": [1_000, 3_601_000]},
...         {"deployment": "api", "variant": "s", "role": "primary", "model": "m",
...          "version": 1, "latency_ms": 0.5})
...     join_labels(connection, "api", ["a", "b", "a", "zz"], ["1", "0", "0", "1"],
...                 windowing=Windowing("1h"), actor="ana")
LabelReceipt(accepted=2, late=1, duplicate=1, unknown=1, unknown_ids=('zz',))
>>> label_counts(db, "api")
{'accepted': 2, 'late': 1, 'duplicate': 1, 'unknown': 1}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.store import tables
from opsloop.store.database import Database, clock_of
from opsloop.store.label_values import label_for_answer, recorded_answer
from opsloop.store.monitor_state import get_state, locked_state, put_state
from opsloop.store.windowing import Windowing

_events, _feedback = tables.prediction_events, tables.prediction_feedback
_waiting = tables.waiting_feedback
_CHUNK = 500
#: What a join counts, in the monitor's state ``labels`` of the deployment.
LABEL_COUNTS = ("accepted", "late", "duplicate", "unknown")


@dataclass(frozen=True)
class LabelReceipt:
    """What a join did (:func:`join_labels`, :func:`opsloop.monitoring.log_labels`):
    labels ``accepted`` (of which ``late``), ``duplicate`` and ``unknown`` ones not kept, and
    the ``unknown_ids`` (at most 100)."""

    accepted: int
    late: int
    duplicate: int
    unknown: int
    unknown_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The receipt as a JSON-safe dict (:meth:`from_dict` reads it back).

        >>> receipt = LabelReceipt(2, 1, 0, 1, ("zz",))
        >>> LabelReceipt.from_dict(receipt.to_dict()) == receipt, receipt.to_dict()["unknown_ids"]
        (True, ['zz'])
        """
        return {**asdict(self), "unknown_ids": list(self.unknown_ids)}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> LabelReceipt:
        """Rebuild from :meth:`to_dict`."""
        return cls(**{**document, "unknown_ids": tuple(document["unknown_ids"])})


#: The roles of the answers labels are about: a served request's primary answer and a
#: batch-scored row's primary answer. A shadow's answer to the same request, and a batch
#: row's answers by the other variants (role ``batch_shadow``), are not labelled apart: no
#: task metric of a candidate comes from rows its split did not send it.
LABELLED_ROLES = ("primary", "batch")


def join_labels(
    connection: Connection,
    deployment: str,
    ids: list[str],
    texts: list[str],
    *,
    windowing: Windowing,
    actor: str,
    reward: float | None = None,
    fields: Sequence[str] | None = None,
) -> LabelReceipt:
    """Keep the labels ``texts`` (JSON) of the answers ``ids`` of ``deployment`` inside the
    caller's transaction, and count them (the module docstring says what happens to late,
    duplicate and unknown ones); ``reward`` is kept beside each label kept.
    :func:`opsloop.monitoring.log_labels` and the data plane's feedback
    (:func:`opsloop.serving.prediction_feedback.record_feedback`) both join labels with it,
    so a label is kept and counted one way.

    Each label to be kept whose answer is recorded is checked against it first (its record
    count and kind, :func:`~opsloop.store.label_values.label_for_answer`; a duplicate,
    discarded, by its count only); one that does not fit
    raises :class:`~opsloop.errors.InvalidArgumentError` naming its field (``fields[i]``,
    by default ``labels[i]``) before anything is written, so the caller's transaction
    keeps none of the call's labels and counts none. A label of an unknown id is not kept,
    so it is checked when it is sent again once its answer is recorded. A label of an
    answer of integer classes is kept as the classes it equals (``0.0`` as ``0``).

    >>> with db.write() as connection:
    ...     join_labels(connection, "api", ["nope"], ["1"], windowing=Windowing(), actor="ana")
    LabelReceipt(accepted=0, late=0, duplicate=0, unknown=1, unknown_ids=('nope',))
    >>> from opsloop.store.event_insert import insert_event_columns
    >>> with db.write() as connection:
    ...     insert_event_columns(connection, {"request_id": ["c"], "at_ms": [1_000],
    ...         "output_json": ['{"predictions": [2.5, 0.5]}']}, {"deployment": "api",
    ...         "variant": "s", "role": "primary", "model": "m", "version": 1, "latency_ms": 1})
    ...     join_labels(connection, "api", ["nope", "c"], ["1", '[3.0, "yes"]'],
    ...                 windowing=Windowing(), actor="ana")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: labels[1][1]: the model answers numbers; give a number, got the text 'yes'
    """  # noqa: E501 - a doctest's expected output is one line
    now = clock_of(connection)
    # The counts' row locked first: joins of one deployment's labels take turns, so two at
    # once never both keep a label for one answer nor both count from the same total.
    counts = locked_state(connection, deployment, "labels", dict.fromkeys(LABEL_COUNTS, 0))
    answered: dict[str, int] = {}
    outputs: dict[str, str | None] = {}
    labelled: set[str] = set()
    unique = list(dict.fromkeys(ids))
    for i in range(0, len(unique), _CHUNK):
        chunk = unique[i : i + _CHUNK]
        # One read gives each id's time and answer: the first recorded answer of an id (an
        # id is one answer's; a client reusing one has its first answer judged and timed).
        for request_id, at_ms, output_json in connection.execute(
            sa.select(_events.c.request_id, _events.c.at_ms, _events.c.output_json)
            .where(
                _events.c.deployment == deployment,
                _events.c.role.in_(LABELLED_ROLES),
                _events.c.request_id.in_(chunk),
            )
            .order_by(_events.c.at_ms, _events.c.id)
        ):
            if request_id not in answered:
                answered[request_id] = at_ms
                outputs[request_id] = output_json
        labelled.update(
            connection.execute(
                sa.select(_feedback.c.request_id).where(
                    _feedback.c.deployment == deployment,
                    _feedback.c.request_id.in_(chunk),
                    _feedback.c.label_json.is_not(None),
                )
            ).scalars()
        )
    # Only the labels that will be kept are judged by kind: one for an id labelled already,
    # or a second copy within the call, is discarded as a duplicate, so its value never
    # refuses the call's new labels (a re-sent batch keeps its new ones); its shape is
    # still the answer's.
    judged = set(labelled)
    texts = list(texts)
    for at, (request_id, text) in enumerate(zip(ids, texts, strict=True)):
        if request_id not in answered:
            continue
        predictions, classes = recorded_answer(outputs[request_id])
        if request_id in judged:
            predictions, classes = None if predictions is None else [None] * len(predictions), None
        judged.add(request_id)
        if predictions is not None and text != "null":  # null: not known
            field = f"labels[{at}]" if fields is None else fields[at]
            given = json.loads(text)
            kept = label_for_answer(
                given, len(predictions), predictions, classes=classes, field=field
            )
            if kept is not given:  # a value of integer classes as the class it equals
                texts[at] = json.dumps(kept)
    rows, unknown_ids = [], []
    late = duplicate = 0
    for request_id, text in zip(ids, texts, strict=True):
        if request_id not in answered:
            unknown_ids.append(request_id)
        elif request_id in labelled:
            duplicate += 1
        else:
            labelled.add(request_id)
            closes = windowing.start_of(answered[request_id]) + windowing.window_ms
            late += now >= closes
            rows.append(
                {
                    "deployment": deployment,
                    "request_id": request_id,
                    "label_json": text,
                    "reward": reward,
                    "created_ms": now,
                    "created_by": actor,
                }
            )
    if rows:
        connection.execute(_feedback.insert(), rows)
    receipt = LabelReceipt(len(rows), late, duplicate, len(unknown_ids), tuple(unknown_ids[:100]))
    for name in LABEL_COUNTS:
        counts[name] += getattr(receipt, name)
    put_state(connection, deployment, "labels", counts)
    return receipt


def label_counts(db: Database, deployment: str) -> dict[str, int]:
    """The labels counted so far for ``deployment``: accepted, late, duplicate, unknown.
    Feedback that waited for its answer past its wait (:mod:`.waiting_feedback`) is an
    unknown id from then on, counted here before it is removed.

    >>> label_counts(db, "nothing-yet")
    {'accepted': 0, 'late': 0, 'duplicate': 0, 'unknown': 0}
    """
    with db.read() as connection:
        counts = get_state(connection, deployment, "labels", dict.fromkeys(LABEL_COUNTS, 0))
        counts["unknown"] += expired_waiting(connection, deployment)
        return counts


def expired_waiting(connection: Connection, deployment: str) -> int:
    """The feedback of ``deployment`` that waited for its answer past its wait and is not
    removed yet (:mod:`.waiting_feedback`): unknown ids.

    >>> with db.read() as connection:
    ...     expired_waiting(connection, "api")
    0
    """
    return connection.execute(
        sa.select(sa.func.count())
        .select_from(_waiting)
        .where(_waiting.c.deployment == deployment, _waiting.c.expires_ms <= clock_of(connection))
    ).scalar_one()


__all__ = [
    "LABELLED_ROLES",
    "LABEL_COUNTS",
    "LabelReceipt",
    "expired_waiting",
    "join_labels",
    "label_counts",
]
