"""Feedback that came before its answer was recorded, kept until the answer lands.

A serving worker writes its prediction events in batches, off the request path, so a
client that sends feedback right after the answer (to another worker, or to the control
plane of a data plane whose batch is still on its way) can find no recorded answer yet.
Such feedback is kept here (:func:`keep_waiting`), in the store, and joined to the answer
in the very transaction that writes the answer's event (:func:`join_waiting`): a label as
:func:`~.label_join.join_labels` joins one (checked against the answer, counted accepted,
late or duplicate), a reward beside it. The writer reads what it joined into the
deployment's rollout once its transaction has committed, as the feedback itself would have
been read.

**Bounds.** At most :data:`MAX_WAITING` rows per deployment wait, each for at most
:data:`WAIT_MS` (on the store's clock); nothing is held in memory. Feedback past the
bound is refused as feedback of an unknown id was before (not kept, counted ``unknown``).
A row whose answer did not land within :data:`WAIT_MS` is an **unknown** id (never
served, or its event was lost): it is counted ``unknown`` in the deployment's label counts
from then on (:func:`~.label_join.label_counts` adds them), and, and
removed by the next feedback of the deployment. A label that does not fit the answer that
lands (its count or kind) is dropped and counted in :func:`waiting_counts` (``misfit``),
as a call of :func:`~opsloop.monitoring.log_labels` with such a label keeps none.

**Exactly once.** The row is deleted in the transaction that joins it, so one writer joins
it and reads it. On PostgreSQL, feedback of a deployment takes its lock exclusively
(:func:`hold_answers`) before it looks for the answer, and an event writer takes it shared
after inserting its events and before it looks for waiting rows: whichever commits first,
the other sees it, so feedback is either joined at once or joined by the event's writer.
SQLite's write transactions hold the whole database.

>>> from opsloop.store.database import Database
>>> from opsloop.store.event_insert import insert_event_columns
>>> db = Database("sqlite://", clock=lambda: 5_000)
>>> with db.write() as connection:
...     keep_waiting(connection, "api", "r1", "1", None, "ana")
>>> waiting_counts(db, "api")["waiting"]
1
>>> with db.write() as connection:
...     insert_event_columns(connection, {"request_id": ["r1"], "at_ms": [4_000]},
...         {"deployment": "api", "variant": "s", "role": "primary", "model": "m",
...          "version": 1, "latency_ms": 0.5})
...     join_waiting(connection, {"api": ["r1"]})
[JoinedFeedback(deployment='api', request_id='r1', label=1, reward=None)]
>>> waiting_counts(db, "api")
{'waiting': 0, 'joined': 1, 'expired': 0, 'misfit': 0, 'refused': 0}
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import AlreadyDoneError, InvalidArgumentError, NotFoundError
from opsloop.store import tables
from opsloop.store.database import Database, clock_of
from opsloop.store.label_join import LABEL_COUNTS, expired_waiting, join_labels
from opsloop.store.monitor_state import get_state, locked_state, put_state
from opsloop.store.windowing import Windowing

logger = logging.getLogger("opsloop.store")

_waiting, _feedback = tables.waiting_feedback, tables.prediction_feedback
#: The most feedback rows one deployment keeps waiting for their answers.
MAX_WAITING = 10_000
#: How long (ms, on the store's clock) feedback waits for its answer to be recorded: far
#: longer than a worker's batch of events takes to reach the store.
WAIT_MS = 600_000
#: What :func:`waiting_counts` counts, beside the rows waiting now.
WAITING_COUNTS = ("joined", "expired", "misfit", "refused")
# The class of the advisory lock of a deployment's answers (pg_advisory_xact_lock's first
# key), apart from the name lock of opsloop.serving.retired_names.
_ANSWERS_LOCK_CLASS = 0x6F707302
_CHUNK = 500


@dataclass(frozen=True)
class JoinedFeedback:
    """Feedback joined to its answer when the answer's event was written: the
    ``deployment`` and ``request_id``, the ``label`` (as kept) and the ``reward``."""

    deployment: str
    request_id: str
    label: Any
    reward: float | None


def hold_answers(connection: Connection, deployment: str, *, shared: bool) -> None:
    """Hold the lock of ``deployment``'s answers until the caller's transaction ends:
    shared for a writer of its events, exclusive for its feedback (a no-op on SQLite,
    whose write transactions hold the database).

    >>> with Database("sqlite://").write() as c:
    ...     hold_answers(c, "api", shared=True)
    """
    if connection.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(deployment.encode(), digest_size=4).digest()
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    connection.execute(
        sa.text(f"SELECT {function}(:kind, :key)"),
        {"kind": _ANSWERS_LOCK_CLASS, "key": int.from_bytes(digest, "big", signed=True)},
    )


def _count(connection: Connection, deployment: str, **added: int) -> None:
    counts = locked_state(
        connection, deployment, "waiting_labels", dict.fromkeys(WAITING_COUNTS, 0)
    )
    for name, n in added.items():
        counts[name] += n
    put_state(connection, deployment, "waiting_labels", counts)


def _count_labels(connection: Connection, deployment: str, **added: int) -> None:
    counts = locked_state(connection, deployment, "labels", dict.fromkeys(LABEL_COUNTS, 0))
    for name, n in added.items():
        counts[name] += n
    put_state(connection, deployment, "labels", counts)


def keep_waiting(
    connection: Connection,
    deployment: str,
    request_id: str,
    label_json: str | None,
    reward: float | None,
    actor: str,
) -> NotFoundError | None:
    """Keep feedback (``label_json``, ``reward``) of ``deployment``'s answer
    ``request_id``, which no recorded event holds yet, until the answer lands, in the
    caller's transaction, which holds :func:`hold_answers` exclusively. Rows of the
    deployment past their wait go first, counted ``unknown``. Feedback already waiting
    for that id raises :class:`~opsloop.errors.AlreadyDoneError` (the first stands; not
    counted, as a refused label never is). Past :data:`MAX_WAITING` rows nothing is kept:
    the :class:`~opsloop.errors.NotFoundError` is returned, for the caller to raise once
    its transaction commits the count (``unknown``, and ``refused`` here), as feedback of
    an unknown id was refused before answers waited.

    >>> with Database("sqlite://").write() as connection:
    ...     keep_waiting(connection, "api", "r1", None, 1.0, "ana")
    ...     keep_waiting(connection, "api", "r1", None, 0.0, "ana")
    Traceback (most recent call last):
    opsloop.errors.AlreadyDoneError: feedback: feedback of 'r1' of deployment 'api' waits for its answer already; the first one stands
    """  # noqa: E501 - a doctest's expected output is one line
    now = clock_of(connection)
    expired = connection.execute(
        _waiting.delete().where(_waiting.c.deployment == deployment, _waiting.c.expires_ms <= now)
    ).rowcount
    if expired:
        _count(connection, deployment, expired=expired)
        _count_labels(connection, deployment, unknown=expired)
    there = connection.execute(
        sa.select(_waiting.c.id).where(
            _waiting.c.deployment == deployment, _waiting.c.request_id == request_id
        )
    ).first()
    if there is not None:
        raise AlreadyDoneError(
            f"feedback: feedback of {request_id!r} of deployment {deployment!r} waits for its "
            "answer already; the first one stands"
        )
    waiting = connection.execute(
        sa.select(sa.func.count()).select_from(_waiting).where(_waiting.c.deployment == deployment)
    ).scalar_one()
    if waiting >= MAX_WAITING:
        # Counted in the caller's transaction, which commits: the refusal is raised after.
        _count(connection, deployment, refused=1)
        _count_labels(connection, deployment, unknown=1)
        return NotFoundError(
            f"deployment {deployment!r} answered no request with id {request_id!r} (and "
            f"{MAX_WAITING} feedback wait for their answers already, so it is not kept)"
        )
    connection.execute(
        _waiting.insert().values(
            deployment=deployment,
            request_id=request_id,
            label_json=label_json,
            reward=reward,
            created_ms=now,
            created_by=actor,
            expires_ms=now + WAIT_MS,
        )
    )
    return None


def join_waiting(
    connection: Connection, answered: Mapping[str, Sequence[str]]
) -> list[JoinedFeedback]:
    """Join the feedback waiting for the primary answers just written in the caller's
    transaction (``answered``: deployment -> request ids) and remove it; what was joined.
    Each deployment's lock is held shared first (:func:`hold_answers`), in one order.
    A label that does not fit its answer is dropped (``misfit``), never failing the
    write; rows past their wait are left for the count of unknown ids.

    >>> with Database("sqlite://").write() as connection:
    ...     join_waiting(connection, {"api": ["r1"]})
    []
    """
    now = clock_of(connection)
    joined: list[JoinedFeedback] = []
    for deployment in sorted(answered):
        ids = list(dict.fromkeys(answered[deployment]))
        if not ids:
            continue
        hold_answers(connection, deployment, shared=True)
        # Most writes find nothing waiting: one look at the deployment's rows (its index)
        # spares reading the batch's ids.
        some = connection.execute(
            sa.select(_waiting.c.id)
            .where(_waiting.c.deployment == deployment, _waiting.c.expires_ms > now)
            .limit(1)
        ).first()
        if some is None:
            continue
        rows: list[Any] = []
        for start in range(0, len(ids), _CHUNK):
            rows += (
                connection.execute(
                    sa.select(_waiting).where(
                        _waiting.c.deployment == deployment,
                        _waiting.c.request_id.in_(ids[start : start + _CHUNK]),
                        _waiting.c.expires_ms > now,
                    )
                )
                .mappings()
                .all()
            )
        counts = {"joined": 0, "misfit": 0}
        for row in rows:
            claimed = connection.execute(_waiting.delete().where(_waiting.c.id == row["id"]))
            if claimed.rowcount != 1:
                continue  # joined by another writer of the same answer
            fits, kept = _join_one(connection, deployment, row)
            counts["joined" if fits else "misfit"] += 1
            if kept is not None:
                joined.append(kept)
        if any(counts.values()):
            _count(connection, deployment, **counts)
    return joined


def _join_one(
    connection: Connection, deployment: str, row: Mapping[str, Any]
) -> tuple[bool, JoinedFeedback | None]:
    """Join one waiting row: whether its label fits the answer, and the feedback kept (none
    for a misfit, or a label of an answer labelled already, counted duplicate)."""
    request_id, label_json, reward = row["request_id"], row["label_json"], row["reward"]
    if label_json is None:
        connection.execute(
            _feedback.insert().values(
                deployment=deployment,
                request_id=request_id,
                label_json=None,
                reward=reward,
                created_ms=row["created_ms"],
                created_by=row["created_by"],
            )
        )
        return True, JoinedFeedback(deployment, request_id, None, reward)
    try:
        receipt = join_labels(
            connection,
            deployment,
            [request_id],
            [label_json],
            windowing=Windowing(),
            actor=row["created_by"],
            reward=reward,
            fields=["label"],
        )
    except InvalidArgumentError as error:
        # Refused before anything was written: the write of the answers goes on.
        logger.warning(
            "deployment %s: the label that waited for answer %s does not fit it: %s",
            deployment,
            request_id,
            error,
        )
        return False, None
    if not receipt.accepted:
        return True, None  # the answer has a label already (counted duplicate)
    kept = connection.execute(
        sa.select(_feedback.c.label_json)
        .where(_feedback.c.deployment == deployment, _feedback.c.request_id == request_id)
        .order_by(_feedback.c.id.desc())
        .limit(1)
    ).scalar_one()
    return True, JoinedFeedback(deployment, request_id, json.loads(kept), reward)


def waiting_counts(db: Database, deployment: str) -> dict[str, int]:
    """The feedback of ``deployment`` that waits for its answer now (``waiting``), and
    how much of it so far was ``joined``, ``expired`` (unknown ids), dropped as a
    ``misfit`` of its answer, or ``refused`` past :data:`MAX_WAITING`.

    >>> waiting_counts(Database("sqlite://"), "api")
    {'waiting': 0, 'joined': 0, 'expired': 0, 'misfit': 0, 'refused': 0}
    """
    with db.read() as connection:
        now = clock_of(connection)
        waiting = connection.execute(
            sa.select(sa.func.count())
            .select_from(_waiting)
            .where(_waiting.c.deployment == deployment, _waiting.c.expires_ms > now)
        ).scalar_one()
        counts = get_state(
            connection, deployment, "waiting_labels", dict.fromkeys(WAITING_COUNTS, 0)
        )
        counts["expired"] += expired_waiting(connection, deployment)
    return {"waiting": waiting, **counts}


__all__ = [
    "MAX_WAITING",
    "WAIT_MS",
    "JoinedFeedback",
    "hold_answers",
    "join_waiting",
    "keep_waiting",
    "waiting_counts",
]
