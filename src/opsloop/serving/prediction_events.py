"""Prediction events: every answered request and every shadow answer, recorded off the path.

A :class:`PredictionEvent` says who answered (deployment, variant, its role ``primary`` or
``shadow``, the model version), for which request (request id, routing key, the input
records), what (the output, or the error of a failing shadow), how fast and when. The
serving runtime hands events to an :class:`EventRecorder`: a bounded buffer that a
background thread drains in batches into an :class:`EventSink`. Recording never waits:
when the buffer is full the event is dropped and counted. A sink that fails loses its batch
(counted and logged), never the request.

:class:`StoreEventSink` writes to the store's ``prediction_events`` table, and
:func:`read_prediction_events` reads them back (the monitoring consumes them from there),
with the inputs of the events kept in batches (:mod:`opsloop.store.input_batches`) as
records, as those kept as text are. The sink keeps the inputs of a flush's events once,
column by column, as :func:`opsloop.monitoring.log_predictions` keeps a call's, when at least
:data:`~opsloop.store.input_batches.MIN_ROWS` of them are of one record with the same fields
and read back exactly; the others as one JSON text each.

>>> from opsloop.store import Database
>>> db = Database("sqlite://")
>>> recorder = EventRecorder(StoreEventSink(db))
>>> recorder.record(PredictionEvent("api", "stable", "primary", "m", 1, "r1", None,
...                                 [{"x": 1}], {"predictions": [0]}, None, 0.4, 1000))
True
>>> recorder.flush(5.0)
True
>>> read_prediction_events(db, "api")[["variant", "request_id", "inputs"]].values.tolist()
[['stable', 'r1', [{'x': 1}]]]
>>> recorder.close()
"""

from __future__ import annotations

import collections
import enum
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

import pandas as pd
import sqlalchemy as sa

from opsloop.errors import InvalidArgumentError
from opsloop.serving.process_samples import ProcessSampler
from opsloop.serving.retired_names import hold_name, home_of
from opsloop.store import tables
from opsloop.store.database import Database, clock_of
from opsloop.store.event_insert import insert_event_columns
from opsloop.store.input_batches import (
    MIN_ROWS,
    event_inputs,
    insert_input_batch,
    records_table,
)
from opsloop.store.waiting_feedback import JoinedFeedback, join_waiting

logger = logging.getLogger("opsloop.serving")

_events = tables.prediction_events

#: Columns of :func:`read_prediction_events`'s frame.
EVENT_COLUMNS = (
    "deployment",
    "variant",
    "role",
    "model",
    "version",
    "request_id",
    "routing_key",
    "inputs",
    "output",
    "error",
    "latency_ms",
    "at_ms",
    "disposition",
    "assertions",
    "routed_share",
    "routed",
)


@dataclass(frozen=True)
class PredictionEvent:
    """One answer: the deployment and variant, its role (``primary`` or ``shadow``; ``batch``
    or ``batch_shadow`` for a batch-scored row, see :mod:`.batch_scoring`), the model
    version, the request id and routing key, the input records, the output (``None`` with
    an ``error`` when a shadow failed), the latency in milliseconds and the time in
    milliseconds since the epoch. ``disposition`` says what the client got (``answered``,
    ``suggestion``, ``queued`` for review, ``logged`` only; see :mod:`.automation`) and
    ``assertions`` counts the rows each model assertion fired on. ``generation`` is that of
    the deployment definition that answered (:mod:`.retired_names`; ``None``: the event is
    kept under ``deployment`` as named): the store keeps an event whose deployment was
    retired before it was written with that deployment's history. ``routed_share`` is the
    candidate's share a canary's split routed the request at (the share its ramp's request
    counts read it at, :func:`~.canary_rollout.routed_share`); ``None`` for a request no
    canary's split routed (another strategy, a variant named by the request, a shadow's
    copy, a batch row, an event logged from Python): a label's task-metric gate then reads
    it at the share of the step when it was answered (:func:`~.canary_rollout.observe_labels`).
    ``routed`` says whether the deployment's split routed the request: ``False`` for one
    that named its variant and for a batch's row, whose label no gate reads; ``None`` where
    unknown (an event logged from Python), read as one without ``routed_share`` is.

    >>> PredictionEvent("api", "s", "shadow", "m", 2, "r", None, [], None, "boom", 1.0,
    ...                 5).to_row()["error"]
    'boom'
    """

    deployment: str
    variant: str
    role: str
    model: str
    version: int
    request_id: str
    routing_key: str | None
    inputs: list[dict[str, Any]]
    output: dict[str, Any] | None
    error: str | None
    latency_ms: float
    at_ms: int
    disposition: str | None = None
    assertions: dict[str, int] | None = None
    generation: int | None = None
    routed_share: float | None = None
    routed: bool | None = None

    def to_document(self) -> dict[str, Any]:
        """The event as the document a data plane sends its control plane
        (:class:`~.deployment_service.EventDocument`): a field that says nothing (``None``)
        is left out, so that a control plane older than the field keeps the event, and so
        is ``routed`` where it is ``True``, as a served request's is (the control plane
        reads it as unknown, and the share the request was routed at, which a ramp reads,
        travels as ``routed_share``).

        >>> event = PredictionEvent("api", "s", "primary", "m", 1, "r", None, [], None, None,
        ...                         1.0, 5, routed=True)
        >>> sorted(event.to_document())  # doctest: +NORMALIZE_WHITESPACE
        ['at_ms', 'deployment', 'inputs', 'latency_ms', 'model', 'request_id', 'role',
         'variant', 'version']
        >>> PredictionEvent("api", "s", "primary", "m", 1, "r", None, [], None, None, 1.0, 5,
        ...                 routed_share=0.25, routed=False).to_document()["routed"]
        False
        """
        said = {field.name: getattr(self, field.name) for field in fields(self)}
        return {
            name: value
            for name, value in said.items()
            if value is not None and not (name == "routed" and value is True)
        }

    def to_row(self) -> dict[str, Any]:
        """The event as a row of the store's ``prediction_events`` table."""
        return {**self._row(), "inputs_json": json.dumps(self.inputs, default=str)}

    def _row(self) -> dict[str, Any]:
        """The row without its inputs."""
        return {
            "deployment": self.deployment,
            "variant": self.variant,
            "role": self.role,
            "model": self.model,
            "version": self.version,
            "request_id": self.request_id,
            "routing_key": self.routing_key,
            "output_json": None if self.output is None else json.dumps(self.output, default=str),
            "error": self.error,
            "latency_ms": float(self.latency_ms),
            "at_ms": int(self.at_ms),
            "disposition": self.disposition,
            "assertions_json": None if self.assertions is None else json.dumps(self.assertions),
            "routed_share": None if self.routed_share is None else float(self.routed_share),
            "routed": self.routed,
        }


class EventSink(Protocol):
    """Where recorded events go: ``write`` takes a batch (and may raise; the recorder
    counts the loss)."""

    def write(self, events: Sequence[PredictionEvent]) -> None:
        """Keep ``events``."""
        ...


class _Sampling(enum.Enum):
    PROCESS = "process"


class StoreEventSink:
    """Writes events to the store's ``prediction_events`` table, one transaction a batch,
    with a sample of the process's memory and CPU time when ``sampler`` says one is due
    (:mod:`.process_samples`). By default a sampler of this process (every
    :data:`~.process_samples.SAMPLE_INTERVAL_S`), as a serving worker needs for its
    windows' software metrics; ``None`` samples nothing.

    An event of a deployment retired before the write (its ``generation`` is older than
    the name's retires) is kept with that deployment's history, ``NAME/retired-N``, where
    the retire moved its other events (:mod:`.retired_names`); ``moved`` counts them.

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://")
    >>> event = PredictionEvent("api", "s", "primary", "m", 1, "r", None, [], None, None, 1.0, 5)
    >>> StoreEventSink(db, sampler=None).write([event])
    >>> db.read_value("SELECT count(*) FROM process_samples")
    0
    >>> StoreEventSink(db).write([event])
    >>> db.read_value("SELECT count(*) FROM process_samples")
    1
    """

    def __init__(
        self,
        db: Database,
        *,
        sampler: ProcessSampler | _Sampling | None = _Sampling.PROCESS,
        read_joined: Callable[[list[JoinedFeedback]], None] | None = None,
        read_joined_labels: Callable[[sa.Connection, list[JoinedFeedback]], Callable[[], None]]
        | None = None,
    ) -> None:
        self.db = db
        #: Reads the feedback joined by a write into the rollouts (the serving runtime's,
        #: :meth:`~.rollout_observer.RolloutObserver.read_joined`); ``None`` reads none.
        self.read_joined = read_joined
        #: Reads the labels of that feedback into the rollouts' gates in the write's own
        #: transaction (:meth:`~.rollout_observer.RolloutObserver.read_joined_labels`), so
        #: that a label kept is a label read; ``read_joined`` then gets the rewards only.
        self.read_joined_labels = read_joined_labels
        self.sampler = ProcessSampler() if sampler is _Sampling.PROCESS else sampler
        #: Events written with a retired deployment's history (answered before its retire).
        self.moved = 0

    def write(self, events: Sequence[PredictionEvent]) -> None:
        """Insert ``events`` (and a process sample that is due) in one transaction, which
        joins the feedback that waited for their answers
        (:func:`~opsloop.store.waiting_feedback.join_waiting`); its labels are read into
        the rollouts' gates in that transaction (with ``read_joined_labels``), and once it
        committed, the rest of that feedback is read into the deployments' rollouts, as
        feedback joined at once is."""
        if not events:
            return
        with self.db.write() as connection:
            sent, (events, moved) = events, _homed(connection, events)
            kept = _keep_inputs_by_column(connection, events)
            rows = [event._row() for event in events]
            columns = {name: [row[name] for row in rows] for name in rows[0]}
            columns["inputs_json"] = [
                None if position in kept else json.dumps(event.inputs, default=str)
                for position, event in enumerate(events)
            ]
            columns["input_batch_id"] = [kept.get(i, (None, None))[0] for i in range(len(rows))]
            columns["input_row"] = [kept.get(i, (None, None))[1] for i in range(len(rows))]
            insert_event_columns(connection, columns, {})
            if self.sampler is not None:
                rows = self.sampler.rows(
                    (event.deployment for event in events), at_ms=clock_of(connection)
                )
                if rows:
                    connection.execute(tables.process_samples.insert(), rows)
            answered: dict[str, list[str]] = {}
            # Feedback sent under the name since its deployment retired waits under it.
            sent_as: dict[str, str] = {}
            for given, event in zip(sent, events, strict=True):
                if event.role == "primary":
                    answered.setdefault(event.deployment, []).append(event.request_id)
                    if given.deployment != event.deployment:
                        sent_as[event.deployment] = given.deployment
            joined = join_waiting(connection, answered, sent_as)
            then = None
            if joined and self.read_joined_labels is not None:
                then = self.read_joined_labels(connection, joined)
                joined = [replace(item, label=None) for item in joined]
        self.moved += moved
        if then is not None:
            then()
        joined = [item for item in joined if item.label is not None or item.reward is not None]
        if joined and self.read_joined is not None:
            self.read_joined(joined)


def _homed(
    connection: Any, events: Sequence[PredictionEvent]
) -> tuple[Sequence[PredictionEvent], int]:
    """``events``, each under the name its deployment's records are kept under now (see
    :mod:`.retired_names`), and how many moved to a history; the names are held until the
    caller's transaction ends, so a retire cannot come between this and the insert."""
    generations: dict[str, set[int]] = {}
    for event in events:
        if event.generation is not None:
            generations.setdefault(event.deployment, set()).add(event.generation)
    homes: dict[tuple[str, int], str] = {}
    for name in sorted(generations):  # one order in every writer
        hold_name(connection, name, shared=True)
        for generation in generations[name]:
            homes[name, generation] = home_of(connection, name, generation)
    if all(home == name for (name, _), home in homes.items()):
        return events, 0
    homed = [
        e
        if e.generation is None or homes[e.deployment, e.generation] == e.deployment
        else replace(e, deployment=homes[e.deployment, e.generation])
        for e in events
    ]
    count = sum(1 for a, b in zip(events, homed, strict=True) if a is not b)
    logger.info("kept %d prediction events of retired deployments with their history", count)
    return homed, count


def _keep_inputs_by_column(
    connection: Any, events: Sequence[PredictionEvent]
) -> dict[int, tuple[int, int]]:
    """Keep the inputs of ``events`` of one record once per group of at least ``MIN_ROWS``
    with the same deployment and fields (in order), column by column where they read back
    exactly (:func:`~opsloop.store.input_batches.records_table`); return each kept event's
    ``(batch id, row)`` by its position in ``events``."""
    groups: dict[tuple, list[int]] = {}
    for position, event in enumerate(events):
        if (
            isinstance(event.inputs, list)
            and len(event.inputs) == 1
            and isinstance(event.inputs[0], dict)
        ):
            key = (event.deployment, tuple(event.inputs[0]))
            groups.setdefault(key, []).append(position)
    kept: dict[int, tuple[int, int]] = {}
    for (deployment, _), positions in groups.items():
        if len(positions) < MIN_ROWS:
            continue
        table = records_table([events[position].inputs[0] for position in positions])
        if table is None:
            continue
        batch = insert_input_batch(connection, deployment, table)
        kept.update((position, (batch, row)) for row, position in enumerate(positions))
    return kept


class EventRecorder:
    """A bounded buffer of events and the thread that writes them to ``sink`` in batches.

    ``capacity`` bounds the events waiting; ``batch_size`` how many one write takes;
    ``linger_s`` how long the writer waits for a batch to fill before writing what it has.
    ``recorded``, ``written``, ``dropped`` (buffer full) and ``lost`` (the sink failed)
    count events.

    >>> EventRecorder(StoreEventSink(None), capacity=0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: event capacity must be a positive integer, got 0
    """

    def __init__(
        self,
        sink: EventSink,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        linger_s: float = 0.05,
    ) -> None:
        for field, value in (("event capacity", capacity), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{field} must be a positive integer, got {value!r}")
        self.sink = sink
        self.capacity = capacity
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.recorded = self.written = self.dropped = self.lost = 0
        self._buffer: collections.deque[PredictionEvent] = collections.deque()
        self._writing = 0
        self._flushing = 0
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._drain, name="opsloop-events", daemon=True)
        self._thread.start()

    def record(self, event: PredictionEvent) -> bool:
        """Buffer ``event`` for writing; ``False`` (and counted) when the buffer is full."""
        with self._changed:
            if len(self._buffer) >= self.capacity or self._closed:
                self.dropped += 1
                return False
            self._buffer.append(event)
            self.recorded += 1
            # Wake the writer only when it waits for this: the first event of an empty
            # buffer, or a full batch. A wake-up per request costs the request path a
            # switch of the interpreter to a thread that goes straight back to sleep.
            if len(self._buffer) == 1 or len(self._buffer) >= self.batch_size:
                self._changed.notify_all()
        return True

    def _drain(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._buffer or self._closed)
                if not self._buffer and self._closed:
                    return
                # Gather a batch for a while: one transaction per event would cost the
                # request path its share of the interpreter under load.
                self._changed.wait_for(
                    lambda: len(self._buffer) >= self.batch_size or self._closed or self._flushing,
                    timeout=self.linger_s,
                )
                count = min(len(self._buffer), self.batch_size)
                batch = [self._buffer.popleft() for _ in range(count)]
                self._writing = count
            try:
                self.sink.write(batch)
                written, lost = count, 0
            except Exception:
                written, lost = 0, count
                logger.exception("lost %d prediction events: the sink failed", count)
            with self._changed:
                self.written += written
                self.lost += lost
                self._writing = 0
                self._changed.notify_all()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every event recorded so far is written (or lost); ``False`` when
        ``timeout_s`` passed first."""
        with self._changed:
            self._flushing += 1
            self._changed.notify_all()
            try:
                return self._changed.wait_for(
                    lambda: not self._buffer and not self._writing, timeout=timeout_s
                )
            finally:
                self._flushing -= 1

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is buffered (waiting at most ``timeout_s``), then stop."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join(timeout=timeout_s)


def _decoded(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def read_prediction_events(
    db: Database,
    deployment: str | None = None,
    *,
    variant: str | None = None,
    role: str | None = None,
    request_id: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int = 100_000,
) -> pd.DataFrame:
    """The recorded events, oldest first, with ``inputs`` and ``output`` decoded; filtered by
    deployment, variant, role, request id and time (``since_ms`` <= ``at_ms`` <
    ``until_ms``), at most ``limit`` rows.

    >>> from opsloop.store import Database
    >>> read_prediction_events(Database("sqlite://"), "api").columns.tolist()[:3]
    ['deployment', 'variant', 'role']
    """
    where = []
    for column, value in (
        (_events.c.deployment, deployment),
        (_events.c.variant, variant),
        (_events.c.role, role),
        (_events.c.request_id, request_id),
    ):
        if value is not None:
            where.append(column == value)
    if since_ms is not None:
        where.append(_events.c.at_ms >= since_ms)
    if until_ms is not None:
        where.append(_events.c.at_ms < until_ms)
    query = sa.select(_events).where(*where).order_by(_events.c.id).limit(int(limit))
    with db.read() as connection:
        rows = connection.execute(query).mappings().all()
        inputs = event_inputs(
            connection,
            [(row["inputs_json"], row["input_batch_id"], row["input_row"]) for row in rows],
        )
    return pd.DataFrame(
        [
            {
                **{name: row[name] for name in EVENT_COLUMNS if name in row},
                "inputs": found,
                "output": _decoded(row["output_json"]),
                "assertions": _decoded(row["assertions_json"]),
            }
            for row, found in zip(rows, inputs, strict=True)
        ],
        columns=list(EVENT_COLUMNS),
    )
