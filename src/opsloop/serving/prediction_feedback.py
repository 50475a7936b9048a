"""Outcomes of answered requests (a label, a reward), joined to the answer by request id.

Feedback arrives after the answer: the true label once it is known, or a reward for a
bandit. :func:`record_feedback` keeps it when a recorded answer of that deployment has the
request id. An answer's event is written in batches, off the request path, so feedback
may come first: while a deployment of the name stands (or stood), its feedback then waits
for the answer (:mod:`opsloop.store.waiting_feedback`: bounded in rows and time) and is
joined when the event is written; feedback of a name no deployment ever had raises
:class:`~opsloop.errors.NotFoundError`. :func:`read_feedback` gives it back joined with
the primary's answer.

>>> from opsloop.store import Database
>>> from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
>>> db = Database("sqlite://")
>>> StoreEventSink(db).write([PredictionEvent("api", "stable", "primary", "m", 1, "r1",
...     None, [{"x": 1}], {"predictions": [0]}, None, 0.4, 1000)])
>>> record_feedback(db, "api", "r1", label=1, actor="ana")
'joined'
>>> read_feedback(db, "api")[["request_id", "variant", "label", "output"]].values.tolist()
[['r1', 'stable', 1, {'predictions': [0]}]]
>>> record_feedback(db, "api", "r2", reward=1.0, actor="ana")
Traceback (most recent call last):
opsloop.errors.NotFoundError: deployment 'api' answered no request with id 'r2'

A label is joined as :func:`opsloop.monitoring.log_labels` joins it, and counted with its
labels (both join with :func:`opsloop.store.label_join.join_labels`, which lives in the
store so that serving needs nothing of the monitoring); a second label for the same answer is refused (the first stands):

>>> record_feedback(db, "api", "r1", label=0, actor="ana")
Traceback (most recent call last):
opsloop.errors.AlreadyDoneError: label: the answer 'r1' of deployment 'api' has a label already; the first one stands

An answer given by a deployment of the name that has since been retired is kept with that
deployment's history, ``NAME/retired-N`` (:mod:`.retired_names`), even when a deployment was
created again under the name: its feedback, given under the name, is joined with it there
and counted with that history's labels, never refused as unknown nor joined with the
deployment that stands now (whose canary gate or bandit never learns it):

>>> from opsloop.store.label_join import label_counts
>>> from opsloop.registry import ModelRegistry
>>> from opsloop.serving.deployments import Deployments, Variant
>>> from opsloop.store import ArtifactStore
>>> _ = ModelRegistry(db, ArtifactStore(tmp_path)).register("m", b"x", flavor="onnx")
>>> deployments, variants = Deployments(db), [Variant("stable", "m", version=1)]
>>> _ = deployments.deploy("api", variants)
>>> deployments.retire("api"); _ = deployments.deploy("api", variants)
>>> record_feedback(db, "api", "r1", reward=0.5, actor="ana")
'joined'
>>> read_feedback(db, "api/retired-1")["reward"].tolist()  # the label 1 was given before
[nan, 0.5]
>>> record_feedback(db, "api", "r1", label=0, actor="ana")
Traceback (most recent call last):
opsloop.errors.AlreadyDoneError: label: the answer 'r1' of deployment 'api/retired-1' has a label already; the first one stands
>>> label_counts(db, "api/retired-1"), read_feedback(db, "api").empty
({'accepted': 1, 'late': 1, 'duplicate': 0, 'unknown': 0}, True)
>>> label_counts(db, "api")
{'accepted': 0, 'late': 0, 'duplicate': 0, 'unknown': 0}
"""  # noqa: E501 - a doctest's expected output is one line

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import AlreadyDoneError, InvalidArgumentError, NotFoundError
from opsloop.serving.retired_names import history_name, hold_name, retires
from opsloop.store import tables
from opsloop.store.database import Database, clock_of
from opsloop.store.label_join import LABELLED_ROLES, join_labels
from opsloop.store.label_values import checked_label, plain_label
from opsloop.store.waiting_feedback import hold_answers, keep_waiting
from opsloop.store.windowing import Windowing

_events, _feedback = tables.prediction_events, tables.prediction_feedback

#: What :func:`record_feedback` did: joined the feedback to its recorded answer, or kept it
#: waiting for the answer's event.
JOINED, WAITING = "joined", "waiting"

# Names of one deployment's answers looked up per query (far below any driver's limit on
# bound parameters).
_NAMES_PER_QUERY = 500

#: Columns of :func:`read_feedback`'s frame.
FEEDBACK_COLUMNS = (
    "request_id",
    "variant",
    "model",
    "version",
    "label",
    "reward",
    "output",
    "answered_ms",
    "created_ms",
    "created_by",
)


def record_feedback(
    db: Database,
    deployment: str,
    request_id: str,
    *,
    label: Any = None,
    reward: float | None = None,
    actor: str,
    read_label: Callable[[Connection, str, str, Any], Any] | None = None,
) -> str:
    """Keep a ``label`` and/or a ``reward`` for the answer ``request_id`` of ``deployment``:
    :data:`JOINED` when its answer is recorded, :data:`WAITING` when it is not yet and a
    deployment of the name stands or stood: the feedback then waits for the answer's event
    and is joined when it is written (:mod:`opsloop.store.waiting_feedback`, which says
    the bounds), or counted an unknown id when it is not written in time.

    A label is one scalar for an answer to one record, a list of one per record for an
    answer to several (:mod:`opsloop.store.label_values` says which scalars); a label of
    another shape, whose count is not the answer's records, or whose values are not of the
    kind the model answers (a text for text classes, a whole number for integer classes, a
    number for a regression), or that is none of the classes a classifier's answer carries,
    is refused, naming ``label``. A ``reward`` must be a finite
    number. ``read_label(connection, deployment, request_id, label)`` reads a label joined
    at once in the transaction that keeps it (a canary's gate: the label is then never kept
    without being read), when the answer is the standing deployment's:

    >>> record_feedback(Database("sqlite://"), "api", "r1", actor="ana")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: feedback: give a label, a reward or both
    >>> record_feedback(Database("sqlite://"), "api", "r1", label={"a": 1}, actor="ana")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: label: must be a finite number, a bool or a text of at most 1000 characters, or a list of them (one per record), got an object
    """  # noqa: E501 - a doctest's expected output is one line
    if label is None and reward is None:
        raise InvalidArgumentError("feedback: give a label, a reward or both")
    # A numpy scalar or a tuple from a Python caller is the value JSON keeps.
    label = plain_label(label)
    if label is not None:
        checked_label(label)
    if reward is not None and (
        isinstance(reward, bool) or not isinstance(reward, int | float) or not math.isfinite(reward)
    ):
        raise InvalidArgumentError(f"reward: must be a finite number, got {reward!r}")
    with db.write() as connection:
        # Held until the feedback commits, so a retire cannot move the answer between the
        # choice of where it is kept and the insert (see .retired_names).
        hold_name(connection, deployment, shared=True)
        given = deployment
        deployment, answered = _recorded(connection, given, request_id)
        if not answered:
            # Only now, and looked for again once held: a writer of the answer's event
            # then either committed it already or finds this feedback waiting (see
            # opsloop.store.waiting_feedback). Feedback of a recorded answer (the most)
            # never waits for the deployment's writers, nor they for it.
            hold_answers(connection, given, shared=False)
            deployment, answered = _recorded(connection, given, request_id)
        if not answered:
            if not _stood(connection, given):
                raise NotFoundError(
                    f"deployment {given!r} answered no request with id {request_id!r}"
                )
            label_json = None if label is None else json.dumps(label)
            refused = keep_waiting(connection, given, request_id, label_json, reward, actor)
            if refused is None:
                return WAITING
        elif label is not None:
            _join_label(connection, deployment, request_id, label, reward, actor)
            if read_label is not None and deployment == given:
                read_label(connection, deployment, request_id, label)
            return JOINED
        else:
            insert_feedback(
                connection,
                deployment,
                request_id,
                None,
                None if reward is None else float(reward),
                actor,
                clock_of(connection),
            )
            return JOINED
    raise refused  # past the bound of feedback waiting, counted by the write above


def _recorded(connection: Connection, deployment: str, request_id: str) -> tuple[str, bool]:
    """The name the answer ``request_id`` of ``deployment`` is kept under, and whether a
    recorded event that takes labels (a served primary or a batch's answer) holds it."""
    home = answered_under(connection, deployment, request_id)
    answered = connection.execute(
        sa.select(_events.c.id)
        .where(
            _events.c.request_id == request_id,
            _events.c.deployment == home,
            _events.c.role.in_(LABELLED_ROLES),
        )
        .limit(1)
    ).first()
    return home, answered is not None


def _stood(connection: Connection, deployment: str) -> bool:
    """Whether a deployment of the name stands or stood (was retired): its answers may
    still be on their way to the store."""
    standing = connection.execute(
        sa.select(tables.deployments.c.id).where(tables.deployments.c.name == deployment)
    ).first()
    return standing is not None or retires(connection, deployment) > 0


def answered_under(connection: Connection, deployment: str, request_id: str) -> str:
    """The name the primary answer (or batch row, :data:`LABELLED_ROLES`) ``request_id`` of
    the deployment ``deployment`` is kept under, in the caller's transaction:
    ``deployment`` while the deployment that gave it stands (or when no answer has the id),
    else the history of the retire that ended that deployment, ``NAME/retired-N``.

    >>> with Database("sqlite://").read() as c:
    ...     answered_under(c, "api", "r1")
    'api'
    """
    names = [deployment]
    names += [history_name(deployment, n) for n in range(retires(connection, deployment), 0, -1)]
    for start in range(0, len(names), _NAMES_PER_QUERY):
        chunk = names[start : start + _NAMES_PER_QUERY]
        found = set(
            connection.execute(
                sa.select(_events.c.deployment)
                .where(
                    _events.c.request_id == request_id,
                    _events.c.deployment.in_(chunk),
                    _events.c.role.in_(LABELLED_ROLES),
                )
                .distinct()
            ).scalars()
        )
        # The standing deployment first, then the latest history (a request id is one
        # answer's; a client reusing one across deployments gets the newest).
        for name in chunk:
            if name in found:
                return name
    return deployment


def _join_label(
    connection: Connection,
    deployment: str,
    request_id: str,
    label: Any,
    reward: float | None,
    actor: str,
) -> None:
    # The store's join, the one log_labels uses, so that a label is kept and counted
    # (late, duplicate) one way, whether it came here or through the monitoring.
    receipt = join_labels(
        connection,
        deployment,
        [request_id],
        [json.dumps(label)],
        windowing=Windowing(),
        actor=actor,
        reward=None if reward is None else float(reward),
        # Checked there against the answer: one value per record it answered, each of the
        # kind the model answers (label_for_answer).
        fields=["label"],
    )
    if receipt.unknown:
        raise NotFoundError(f"deployment {deployment!r} answered no request with id {request_id!r}")
    if receipt.duplicate:
        raise AlreadyDoneError(
            f"label: the answer {request_id!r} of deployment {deployment!r} has a label "
            "already; the first one stands"
        )


def insert_feedback(
    connection: Connection,
    deployment: str,
    request_id: str,
    label_json: str | None,
    reward: float | None,
    actor: str,
    at_ms: int,
) -> None:
    """Keep one feedback row inside the caller's transaction, unchecked: the review queue
    answers requests it holds, whose answer may still be in the event writer's buffer."""
    connection.execute(
        _feedback.insert().values(
            deployment=deployment,
            request_id=request_id,
            label_json=label_json,
            reward=reward,
            created_ms=at_ms,
            created_by=actor,
        )
    )


def read_feedback(db: Database, deployment: str) -> pd.DataFrame:
    """The feedback of ``deployment``, oldest first, each with the primary answer (or batch
    row's primary answer) it is about (variant, model version, output, when it was answered).

    >>> read_feedback(Database("sqlite://"), "api").empty
    True
    """
    query = (
        sa.select(
            _feedback.c.request_id,
            _events.c.variant,
            _events.c.model,
            _events.c.version,
            _feedback.c.label_json,
            _feedback.c.reward,
            _events.c.output_json,
            _events.c.at_ms.label("answered_ms"),
            _feedback.c.created_ms,
            _feedback.c.created_by,
        )
        .select_from(
            _feedback.join(
                _events,
                sa.and_(
                    _events.c.request_id == _feedback.c.request_id,
                    _events.c.deployment == _feedback.c.deployment,
                    _events.c.role.in_(LABELLED_ROLES),
                ),
            )
        )
        .where(_feedback.c.deployment == deployment)
        # Where a client reused a request id, a feedback's newest answer comes last.
        .order_by(_feedback.c.id, _events.c.id)
    )
    with db.read() as connection:
        rows = connection.execute(query).mappings().all()
    return pd.DataFrame(
        [
            {
                **{name: row[name] for name in FEEDBACK_COLUMNS if name in row},
                "label": None if row["label_json"] is None else json.loads(row["label_json"]),
                "output": None if row["output_json"] is None else json.loads(row["output_json"]),
            }
            for row in rows
        ],
        columns=list(FEEDBACK_COLUMNS),
    )
