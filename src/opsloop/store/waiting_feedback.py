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

**Bounds.** Feedback that waits is kept for anyone who may read predictions (a data
plane's client posts feedback with a viewer's token), so what one caller can make the
store keep is bounded, and one caller cannot take the room of others:

- a waiting label is at most :data:`MAX_WAITING_LABEL_BYTES` of JSON (the label of a
  one-record answer is one scalar, a text of at most 1,000 characters; a number or a
  class for each record of an answer of a thousand records fits too); a larger label is
  refused (:class:`~opsloop.errors.InvalidArgumentError`, naming ``label``): it is taken
  once its answer is recorded, when its count can be checked;
- at most :data:`MAX_WAITING_PER_USER` rows per deployment and user,
  :data:`MAX_WAITING_PER_USER_ALL` per user across all deployments (so that one user
  cannot fill every deployment's share), and :data:`MAX_WAITING` per deployment; past
  any of them, feedback is refused with an
  :class:`~opsloop.errors.OverLimitError` (429) that names the bound and when the oldest
  of those rows ends its wait (Retry-After), counted ``refused`` (not ``unknown``: its id
  may well be answered; a retry after the answer lands is joined at once);
- each row waits at most :data:`WAIT_MS` (on the store's clock); nothing is held in
  memory.

A row whose answer did not land within :data:`WAIT_MS` is an **unknown** id (never
served, or its event was lost): it is counted ``unknown`` in the deployment's label counts
from then on (:func:`~.label_join.label_counts` adds them), and removed by the next
feedback that waits or the next write of the deployment's events (at most
:data:`EXPIRED_PER_WRITE` rows a write). A reward and a label of one answer may come
separately and both wait, in one row (the first of each stands). A label that does not
fit the answer that lands (its count or kind) is dropped, logged, and counted in
:func:`waiting_counts` (``misfit``), as a call of :func:`~opsloop.monitoring.log_labels`
with such a label keeps none. A retire moves the rows of the deployment to its history
name with the rest of its records; feedback sent under the name for an answer of the
retired deployment still on its way is joined to that answer under the history name.

**Exactly once.** The row is deleted in the transaction that joins it, so one writer joins
it and reads it. On PostgreSQL, feedback of a deployment looks for its answer; only when
it is missing does it take the deployment's lock exclusively (:func:`hold_answers`) and
look again before it waits. An event writer takes the lock shared (under the name the
events were sent under) after inserting its events and before it looks for waiting rows:
whichever commits first, the other sees it, so feedback is either joined at once or
joined by the event's writer, and feedback of answers already recorded never waits for
a writer.
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

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import AlreadyDoneError, InvalidArgumentError, OverLimitError
from opsloop.store import tables
from opsloop.store.advisory_locks import LockClass, hold_lock
from opsloop.store.database import Database, clock_of
from opsloop.store.label_join import LABEL_COUNTS, expired_waiting, join_labels
from opsloop.store.monitor_state import get_state, locked_state, put_state
from opsloop.store.windowing import Windowing

logger = logging.getLogger("opsloop.store")

_waiting, _feedback = tables.waiting_feedback, tables.prediction_feedback
#: The most feedback rows one deployment keeps waiting for their answers.
MAX_WAITING = 10_000
#: The most of those rows one user's feedback takes.
MAX_WAITING_PER_USER = 1_000
#: The most rows one user's feedback takes across all deployments: without it, one user
#: could fill :data:`MAX_WAITING_PER_USER` rows at every deployment.
MAX_WAITING_PER_USER_ALL = 5_000
#: The most bytes of JSON a waiting label takes.
MAX_WAITING_LABEL_BYTES = 16_384
#: The most rows past their wait one write of a deployment's events removes.
EXPIRED_PER_WRITE = 500
#: How long (ms, on the store's clock) feedback waits for its answer to be recorded: far
#: longer than a worker's batch of events takes to reach the store.
WAIT_MS = 600_000
#: What :func:`waiting_counts` counts, beside the rows waiting now.
WAITING_COUNTS = ("joined", "expired", "misfit", "refused")
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
    shared for a writer of its events, exclusive for its feedback (its own class of
    :mod:`.advisory_locks`; a no-op on SQLite, whose write transactions hold the database).

    >>> with Database("sqlite://").write() as c:
    ...     hold_answers(c, "api", shared=True)
    """
    hold_lock(connection, LockClass.ANSWERS, deployment, shared=shared)


def hold_user(connection: Connection, user: str) -> None:
    """Hold the lock of ``user``'s waiting feedback across all deployments until the
    caller's transaction ends (a no-op on SQLite, whose write transactions hold the
    database); taken after :func:`hold_answers`, never before.

    >>> with Database("sqlite://").write() as c:
    ...     hold_user(c, "ana")
    """
    hold_lock(connection, LockClass.WAITING_USER, user)


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


def _remove_expired(connection: Connection, deployment: str, now: int, limit: int | None) -> int:
    """Remove (at most ``limit``) rows of ``deployment`` past their wait, counted
    ``expired`` and ``unknown``; how many."""
    query = sa.select(_waiting.c.id).where(
        _waiting.c.deployment == deployment, _waiting.c.expires_ms <= now
    )
    ids = list(connection.execute(query if limit is None else query.limit(limit)).scalars())
    removed = 0
    for start in range(0, len(ids), _CHUNK):
        removed += connection.execute(
            _waiting.delete().where(_waiting.c.id.in_(ids[start : start + _CHUNK]))
        ).rowcount
    if removed:
        _count(connection, deployment, expired=removed)
        _count_labels(connection, deployment, unknown=removed)
    return removed


def _over_limit(
    connection: Connection, deployment: str, actor: str, now: int
) -> OverLimitError | None:
    """The refusal of one more waiting row of ``deployment`` by ``actor``, ``None`` when
    there is room."""
    mine, theirs = _waiting.c.deployment == deployment, _waiting.c.created_by == actor
    # Rows of other deployments past their wait are removed only by their own writes and
    # feedback: not counted here.
    live = _waiting.c.expires_ms > now
    for rows, bound, whose in (
        (mine & theirs, MAX_WAITING_PER_USER, f"of user {actor!r} of deployment {deployment!r}"),
        (theirs & live, MAX_WAITING_PER_USER_ALL, f"of user {actor!r} across all deployments"),
        (mine, MAX_WAITING, f"in all of deployment {deployment!r}"),
    ):
        count, first_end = connection.execute(
            sa.select(sa.func.count(), sa.func.min(_waiting.c.expires_ms)).where(rows)
        ).one()
        if count >= bound:
            retry_s = max(1, -(-(first_end - now) // 1000))
            return OverLimitError(
                f"feedback: {bound} feedback {whose} wait for their answers already (the "
                f"bound); retry after {retry_s} s, or once the answer is recorded",
                retry_after_s=retry_s,
            )
    return None


def keep_waiting(
    connection: Connection,
    deployment: str,
    request_id: str,
    label_json: str | None,
    reward: float | None,
    actor: str,
) -> OverLimitError | None:
    """Keep feedback (``label_json``, ``reward``) of ``deployment``'s answer
    ``request_id``, which no recorded event holds yet, until the answer lands, in the
    caller's transaction, which holds :func:`hold_answers` exclusively. Rows of the
    deployment past their wait go first, counted ``unknown``. A label over
    :data:`MAX_WAITING_LABEL_BYTES` raises :class:`~opsloop.errors.InvalidArgumentError`.
    Feedback waiting for that id already takes the part it lacks (a label beside a reward,
    or a reward beside a label); a part it holds already raises
    :class:`~opsloop.errors.AlreadyDoneError` (the first stands; not counted, as a refused
    label never is). Past :data:`MAX_WAITING_PER_USER`, :data:`MAX_WAITING_PER_USER_ALL`
    or :data:`MAX_WAITING` rows nothing is kept: the :class:`~opsloop.errors.OverLimitError` is returned, for the caller to
    raise once its transaction commits the count (``refused``).

    >>> with Database("sqlite://").write() as connection:
    ...     keep_waiting(connection, "api", "r1", None, 1.0, "ana")
    ...     keep_waiting(connection, "api", "r1", "0", None, "ana")
    ...     keep_waiting(connection, "api", "r1", None, 0.0, "ana")
    Traceback (most recent call last):
    opsloop.errors.AlreadyDoneError: feedback: a reward of 'r1' of deployment 'api' waits for its answer already; the first one stands
    """  # noqa: E501 - a doctest's expected output is one line
    if label_json is not None and len(label_json.encode()) > MAX_WAITING_LABEL_BYTES:
        raise InvalidArgumentError(
            f"label: at most {MAX_WAITING_LABEL_BYTES} bytes of JSON while its answer is not "
            f"recorded yet, got {len(label_json.encode())}; send it once the answer is"
        )
    now = clock_of(connection)
    _remove_expired(connection, deployment, now, None)
    there = connection.execute(
        sa.select(_waiting.c.id, _waiting.c.label_json, _waiting.c.reward).where(
            _waiting.c.deployment == deployment, _waiting.c.request_id == request_id
        )
    ).first()
    if there is not None:
        for part, given, held in (
            ("a label", label_json, there.label_json),
            ("a reward", reward, there.reward),
        ):
            if given is not None and held is not None:
                raise AlreadyDoneError(
                    f"feedback: {part} of {request_id!r} of deployment {deployment!r} waits "
                    "for its answer already; the first one stands"
                )
        connection.execute(
            _waiting.update()
            .where(_waiting.c.id == there.id)
            .values(
                label_json=there.label_json if label_json is None else label_json,
                reward=there.reward if reward is None else reward,
            )
        )
        return None
    hold_user(connection, actor)
    refused = _over_limit(connection, deployment, actor, now)
    if refused is not None:
        # Counted in the caller's transaction, which commits: the refusal is raised after.
        _count(connection, deployment, refused=1)
        return refused
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
    connection: Connection,
    answered: Mapping[str, Sequence[str]],
    sent_as: Mapping[str, str] | None = None,
) -> list[JoinedFeedback]:
    """Join the feedback waiting for the primary answers just written in the caller's
    transaction (``answered``: the name each answer is kept under -> request ids) and
    remove it; what was joined. An answer of a retired deployment is kept under its
    history name; ``sent_as`` maps that name to the name its events were sent under, where
    feedback sent since the retire waits. Each name's lock is held shared first
    (:func:`hold_answers`), in one order. A label that does not fit its answer is dropped
    (``misfit``), never failing the write. Up to :data:`EXPIRED_PER_WRITE` rows past their
    wait of each name are removed (counted ``unknown``). The rows are read a chunk of ids
    at a time (at most 500 rows, each bounded, in memory).

    >>> with Database("sqlite://").write() as connection:
    ...     join_waiting(connection, {"api": ["r1"]})
    []
    """
    now = clock_of(connection)
    sent_as = sent_as or {}
    names = {home: sorted({home, sent_as.get(home, home)}) for home in answered}
    for name in sorted({name for both in names.values() for name in both}):
        hold_answers(connection, name, shared=True)
        _remove_expired(connection, name, now, EXPIRED_PER_WRITE)
    joined: list[JoinedFeedback] = []
    for home in sorted(answered):
        ids = list(dict.fromkeys(answered[home]))
        if not ids:
            continue
        # Most writes find nothing waiting: one look at the names' rows (their index)
        # spares reading the batch's ids.
        some = connection.execute(
            sa.select(_waiting.c.id)
            .where(_waiting.c.deployment.in_(names[home]), _waiting.c.expires_ms > now)
            .limit(1)
        ).first()
        if some is None:
            continue
        counts = {"joined": 0, "misfit": 0}
        for start in range(0, len(ids), _CHUNK):
            rows: Sequence[Any] = (
                connection.execute(
                    sa.select(_waiting).where(
                        _waiting.c.deployment.in_(names[home]),
                        _waiting.c.request_id.in_(ids[start : start + _CHUNK]),
                        _waiting.c.expires_ms > now,
                    )
                )
                .mappings()
                .all()
            )
            for row in rows:
                claimed = connection.execute(_waiting.delete().where(_waiting.c.id == row["id"]))
                if claimed.rowcount != 1:
                    continue  # joined by another writer of the same answer
                fits, kept = _join_one(connection, home, row)
                counts["joined" if fits else "misfit"] += 1
                if kept is not None:
                    joined.append(kept)
        if any(counts.values()):
            _count(connection, home, **counts)
    return joined


def _insert_reward(connection: Connection, deployment: str, row: Mapping[str, Any]) -> None:
    connection.execute(
        _feedback.insert().values(
            deployment=deployment,
            request_id=row["request_id"],
            label_json=None,
            reward=row["reward"],
            created_ms=row["created_ms"],
            created_by=row["created_by"],
        )
    )


def _join_one(
    connection: Connection, deployment: str, row: Mapping[str, Any]
) -> tuple[bool, JoinedFeedback | None]:
    """Join one waiting row: whether its label fits the answer, and the feedback kept (none
    for a misfit, or a label of an answer labelled already, counted duplicate)."""
    request_id, label_json, reward = row["request_id"], row["label_json"], row["reward"]
    if label_json is None:
        _insert_reward(connection, deployment, row)
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
        if reward is None:
            return False, None
        # The reward that waited beside it is the answer's still.
        _insert_reward(connection, deployment, row)
        return False, JoinedFeedback(deployment, request_id, None, reward)
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
    ``misfit`` of its answer, or ``refused`` past :data:`MAX_WAITING_PER_USER`,
    :data:`MAX_WAITING_PER_USER_ALL` or :data:`MAX_WAITING`.

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
    "EXPIRED_PER_WRITE",
    "MAX_WAITING",
    "MAX_WAITING_LABEL_BYTES",
    "MAX_WAITING_PER_USER",
    "MAX_WAITING_PER_USER_ALL",
    "WAIT_MS",
    "JoinedFeedback",
    "hold_answers",
    "hold_user",
    "join_waiting",
    "keep_waiting",
    "waiting_counts",
]
