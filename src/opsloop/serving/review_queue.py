"""The review queue: requests a person decides, kept in the store until answered.

The serving runtime puts a request here when the deployment's automation level or a model
assertion says a person decides (see :mod:`.automation`); active learning puts rows here
through :meth:`ReviewQueue.submit` (see :mod:`.review_oracle`). An item is ``open``, then
``claimed`` by one reviewer (a second reviewer gets a conflict), then ``answered`` with a
label. The label of an item that came from a served request is kept as that request's
feedback in the same transaction (:mod:`.prediction_feedback`), so
:func:`~opsloop.serving.read_feedback`, the monitoring and retraining see it joined with
the request's inputs and answer.

A served request carries the generation of the deployment definition that answered it
(:mod:`.retired_names`). One that reaches the queue after that deployment was retired
(answered by a definition its data plane had not read again) is kept with the retired
deployment's items, under ``NAME/retired-N``, and ``cancelled`` as the retire cancelled the
items it found there: it never enters the queue of a deployment created later under the
name.

>>> from opsloop.store import Database
>>> queue = ReviewQueue(Database("sqlite://"), actor="ana")
>>> item = queue.submit("loans", [{"age": 30}])
>>> item.state, queue.claim(item.id).claimed_by
('open', 'ana')
>>> answered = queue.answer(item.id, "approve")
>>> answered.state, answered.label
('answered', 'approve')
>>> queue.answer(item.id, "decline")
Traceback (most recent call last):
opsloop.errors.ConflictError: review item 1 is answered already (by 'ana')
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import ConflictError, InvalidArgumentError, NotFoundError
from opsloop.registry.users import acting_user
from opsloop.serving.prediction_feedback import insert_feedback
from opsloop.serving.retired_names import hold_name, home_of
from opsloop.store import tables
from opsloop.store.database import Database, open_database
from opsloop.store.label_values import (
    answer_kind,
    answer_of,
    label_for_answer,
    plain_label,
    recorded_answer,
)
from opsloop.tracking.capture import current_user
from opsloop.tracking.limits import checked_key

_items, _events = tables.review_items, tables.prediction_events

#: Why an item is in the queue: the automation level that sent it, a confidence below the
#: deployment's threshold, a model assertion, a question from active learning, or an input
#: its deployment's anomaly detector flagged (:mod:`.input_screening`).
REVIEW_REASONS = (
    "human_only",
    "shadow",
    "ai_assistance",
    "low_confidence",
    "assertion",
    "active_learning",
    "input_anomaly",
)
#: An item's states, in the order it passes through them; an item still open or claimed
#: when its deployment is retired is ``cancelled`` (:func:`retire_review_items`).
REVIEW_STATES = ("open", "claimed", "answered", "cancelled")
#: At most this many items come back from one :meth:`ReviewQueue.list`.
MAX_LISTED = 1_000


@dataclass(frozen=True)
class ReviewItem:
    """One item of the review queue: the deployment and request it is about (``request_id``
    is ``None`` for rows submitted by active learning), why it is here, the input
    ``records``, the model's ``suggestion`` where the reviewer may see it (``ai_assistance``,
    a low confidence, an assertion; never under ``human_only`` or ``shadow``), the
    assertion ``rules`` that fired, its ``state``, who claimed and answered it and when, and
    the ``label`` given.

    >>> ReviewItem(1, "api", "r1", "human_only", [{"x": 1}], None, [], "open", 5).to_dict()[
    ...     "state"]
    'open'
    """

    id: int
    deployment: str
    request_id: str | None
    reason: str
    records: list[dict[str, Any]]
    suggestion: dict[str, Any] | None
    rules: list[str]
    state: str
    created_ms: int
    claimed_by: str | None = None
    claimed_ms: int | None = None
    label: Any = field(default=None)
    answered_by: str | None = None
    answered_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The item as a JSON-safe dictionary."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, document: Mapping) -> ReviewItem:
        """The item :meth:`to_dict` wrote.

        >>> item = ReviewItem(2, "api", None, "active_learning", [{"x": 1}], None, [], "open", 5)
        >>> ReviewItem.from_dict(item.to_dict()) == item
        True
        """
        return cls(**{name: document.get(name) for name in cls.__dataclass_fields__})


def _item(row: Mapping) -> ReviewItem:
    return ReviewItem(
        id=row["id"],
        deployment=row["deployment"],
        request_id=row["request_id"],
        reason=row["reason"],
        records=json.loads(row["records_json"]),
        suggestion=None if row["suggestion_json"] is None else json.loads(row["suggestion_json"]),
        rules=json.loads(row["rules_json"]),
        state=row["state"],
        created_ms=row["created_ms"],
        claimed_by=row["claimed_by"],
        claimed_ms=row["claimed_ms"],
        label=None if row["label_json"] is None else json.loads(row["label_json"]),
        answered_by=row["answered_by"],
        answered_ms=row["answered_ms"],
    )


def _json(field_name: str, value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False, default=str)
    except ValueError as error:
        raise InvalidArgumentError(f"{field_name}: must be plain JSON values ({error})") from None


def enqueue_item(
    connection: Connection,
    deployment: str,
    records: Sequence[Mapping[str, Any]],
    *,
    reason: str,
    at_ms: int,
    request_id: str | None = None,
    suggestion: Mapping[str, Any] | None = None,
    rules: Sequence[str] = (),
    state: str = "open",
) -> int:
    """Add an item inside the caller's transaction, ``open`` (or ``cancelled``: one of a
    retired deployment, see :meth:`ReviewQueue.enqueue`); its id."""
    if state not in ("open", "cancelled"):
        raise InvalidArgumentError(f"state: a new item is open or cancelled, got {state!r}")
    if reason not in REVIEW_REASONS:
        raise InvalidArgumentError(
            f"reason: must be one of {', '.join(REVIEW_REASONS)}, got {reason!r}"
        )
    return connection.execute(
        _items.insert().values(
            deployment=deployment,
            request_id=request_id,
            reason=reason,
            records_json=_json("records", list(records)),
            suggestion_json=None if suggestion is None else _json("suggestion", suggestion),
            rules_json=json.dumps(list(rules)),
            state=state,
            created_ms=at_ms,
        )
    ).inserted_primary_key[0]


class ReviewQueue:
    """The review queue of a store (see the module). ``actor`` is who acts by default (the
    OS user unless given); claiming, answering and submitting need the editor role where
    the store has users.

    >>> ReviewQueue(Database("sqlite://")).get(7)
    Traceback (most recent call last):
    opsloop.errors.NotFoundError: no review item 7
    """

    def __init__(self, db: Database | None = None, *, actor: str | None = None) -> None:
        self.db = db if db is not None else open_database()
        self.actor = actor or current_user()

    def __repr__(self) -> str:
        return f"ReviewQueue({self.db!r}, actor={self.actor!r})"

    def enqueue(
        self,
        deployment: str,
        records: Sequence[Mapping[str, Any]],
        *,
        reason: str,
        request_id: str | None = None,
        suggestion: Mapping[str, Any] | None = None,
        rules: Sequence[str] = (),
        generation: int | None = None,
    ) -> ReviewItem:
        """Add an open item for a served request (the runtime's entry; no role check, the
        data plane already admitted the request). ``generation`` is that of the definition
        that answered it (``None``: the item goes to ``deployment`` as named); a retired
        generation's item is kept, cancelled, with its deployment's history (see the
        module).

        >>> from opsloop.registry.audit import append_audit
        >>> db = Database("sqlite://")
        >>> queue = ReviewQueue(db)
        >>> queue.enqueue("api", [{"x": 1}], reason="human_only", request_id="r1").request_id
        'r1'
        >>> queue.enqueue("api", [{"x": 1}], reason="bored")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: reason: must be one of human_only, shadow, ...
        >>> with db.write() as c:  # what a retire of 'api' leaves in the audit log
        ...     _ = append_audit(c, "ana", "retire", "monitor:api", None, None, {})
        >>> late = queue.enqueue("api", [{"x": 1}], reason="human_only", generation=0)
        >>> late.deployment, late.state
        ('api/retired-1', 'cancelled')
        """
        with self.db.write() as connection:
            # Held until the insert commits, so a retire cannot come between the choice of
            # the item's home and its write (see .retired_names).
            hold_name(connection, deployment, shared=True)
            home = home_of(connection, deployment, generation)
            item_id = enqueue_item(
                connection,
                home,
                records,
                reason=reason,
                at_ms=self.db.clock(),
                request_id=request_id,
                suggestion=suggestion,
                rules=rules,
                state="open" if home == deployment else "cancelled",
            )
            return self._read(connection, item_id)

    # -- the contract's operations ---------------------------------------------------------

    def list(
        self, deployment: str | None = None, *, state: str = "open", limit: int = 100
    ) -> tuple[ReviewItem, ...]:
        """Items oldest first: of ``deployment`` (default: every one), in ``state``
        (``open``, ``claimed``, ``answered``, ``cancelled`` or ``any``), at most ``limit``.

        >>> ReviewQueue(Database("sqlite://")).list(state="lost")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: state: must be one of open, claimed, answered, ...
        """
        if state not in (*REVIEW_STATES, "any"):
            raise InvalidArgumentError(
                f"state: must be one of {', '.join(REVIEW_STATES)}, any, got {state!r}"
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LISTED:
            raise InvalidArgumentError(
                f"limit: must be an integer in [1, {MAX_LISTED}], got {limit!r}"
            )
        query = sa.select(_items).order_by(_items.c.id).limit(limit)
        if deployment is not None:
            query = query.where(_items.c.deployment == deployment)
        if state != "any":
            query = query.where(_items.c.state == state)
        with self.db.read() as connection:
            return tuple(_item(row) for row in connection.execute(query).mappings())

    def get(self, item_id: int) -> ReviewItem:
        """The item ``item_id``."""
        with self.db.read() as connection:
            return self._read(connection, item_id)

    def label_kind(self, item: ReviewItem) -> str | None:
        """The kind of label :meth:`answer` takes for ``item``: the
        :func:`~opsloop.store.label_values.answer_kind` of the model's own answer (its
        request's recorded answer, see :meth:`answer`), ``None`` when not known.

        >>> from opsloop.monitoring.event_log import log_predictions
        >>> queue = ReviewQueue(Database("sqlite://"), actor="ana")
        >>> _ = log_predictions(queue.db, "loans", [{"age": 40}], [1], probabilities=[0.8],
        ...                     request_ids=["r1"], at_ms=1_000)
        >>> item = queue.enqueue("loans", [{"age": 40}], reason="shadow", request_id="r1")
        >>> queue.label_kind(item), queue.label_kind(queue.submit("loans", [{"age": 3}]))
        ('classes', None)
        """
        with self.db.read() as connection:
            predictions, classes = _answered(connection, item)
        return None if predictions is None else answer_kind(predictions, classes)

    def submit(
        self,
        deployment: str,
        records: Sequence[Mapping[str, Any]],
        *,
        actor: str | None = None,
    ) -> ReviewItem:
        """Ask people for the labels of ``records`` (one item; reason ``active_learning``),
        under ``deployment``'s queue; nothing is served.

        >>> ReviewQueue(Database("sqlite://")).submit("api", []).records
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: records: give at least one record
        """
        checked_key("deployment", deployment)
        if not records:
            raise InvalidArgumentError("records: give at least one record")
        with self.db.write() as connection:
            acting_user(connection, actor or self.actor, "editor")
            item_id = enqueue_item(
                connection, deployment, records, reason="active_learning", at_ms=self.db.clock()
            )
            return self._read(connection, item_id)

    def claim(self, item_id: int, *, actor: str | None = None) -> ReviewItem:
        """Take item ``item_id`` to answer it; claiming one's own claim again is harmless,
        another reviewer's claim or an answered item is a conflict."""
        with self.db.write() as connection:
            who = acting_user(connection, actor or self.actor, "editor")
            item = self._read(connection, item_id)
            if item.state == "claimed" and item.claimed_by == who:
                return item
            self._check_open(item, who)
            taken = connection.execute(
                _items.update()
                .where(_items.c.id == item_id, _items.c.state == "open")
                .values(state="claimed", claimed_by=who, claimed_ms=self.db.clock())
            ).rowcount
            if taken != 1:  # another reviewer's claim committed first
                raise ConflictError(f"review item {item_id} was claimed by someone else")
            return self._read(connection, item_id)

    def claim_next(self, deployment: str, *, actor: str | None = None) -> ReviewItem | None:
        """Claim the oldest open item of ``deployment``; ``None`` when none is open.

        >>> ReviewQueue(Database("sqlite://")).claim_next("api") is None
        True
        """
        with self.db.write() as connection:
            who = acting_user(connection, actor or self.actor, "editor")
            while True:
                found = connection.execute(
                    sa.select(_items.c.id)
                    .where(_items.c.deployment == deployment, _items.c.state == "open")
                    .order_by(_items.c.id)
                    .limit(1)
                ).scalar()
                if found is None:
                    return None
                taken = connection.execute(
                    _items.update()
                    .where(_items.c.id == found, _items.c.state == "open")
                    .values(state="claimed", claimed_by=who, claimed_ms=self.db.clock())
                ).rowcount
                if taken == 1:
                    return self._read(connection, found)

    def answer(self, item_id: int, label: Any, *, actor: str | None = None) -> ReviewItem:
        """Answer item ``item_id`` with ``label`` (an open item is claimed and answered at
        once); for a served request the label becomes its feedback.

        The label is checked as every label is
        (:func:`~opsloop.store.label_values.label_for_answer`): one value per record of the
        item (a scalar for one record, a list for several), each of the kind of the model's
        own answer where it is known, and one of its classes where it lists them: the
        request's recorded answer (not the suggestion, which holds the assertions'
        overrides), else the classes the suggestion lists.
        Under ``human_only`` the model gave none, and a request whose answer is still on its
        way to the store is judged by its records (and classes) only; the evaluation checks
        its label against the answer when it reads it back.

        >>> queue = ReviewQueue(Database("sqlite://"), actor="ana")
        >>> item = queue.enqueue("api", [{"x": 1}, {"x": 2}], reason="ai_assistance",
        ...                      request_id="r1", suggestion={"predictions": [0, 1],
        ...                      "probabilities": [[0.9, 0.1], [0.2, 0.8]], "classes": [0, 1]})
        >>> queue.answer(item.id, 1)
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: label: the answer has 2 records; give a list of 2 values, one per record
        >>> queue.answer(item.id, [1, "yes"])
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: label[1]: the model answers classes (integers); give a class, got the text 'yes'
        >>> queue.answer(item.id, [1, 1]).label
        [1, 1]
        """  # noqa: E501 - a doctest's expected output is one line
        if label is None:
            raise InvalidArgumentError("label: give the answer (a JSON value, not null)")
        label = plain_label(label)
        with self.db.write() as connection:
            who = acting_user(connection, actor or self.actor, "editor")
            item = self._read(connection, item_id)
            if not (item.state == "claimed" and item.claimed_by == who):
                self._check_open(item, who)
            predictions, classes = _answered(connection, item)
            label_json = _json(
                "label",
                label_for_answer(label, len(item.records), predictions, classes=classes),
            )
            at = self.db.clock()
            changed = connection.execute(
                _items.update()
                .where(_items.c.id == item_id, _items.c.state == item.state)
                .values(
                    state="answered",
                    claimed_by=item.claimed_by or who,
                    claimed_ms=item.claimed_ms or at,
                    label_json=label_json,
                    answered_by=who,
                    answered_ms=at,
                )
            ).rowcount
            if changed != 1:
                raise ConflictError(f"review item {item_id} changed while being answered")
            if item.request_id is not None:
                insert_feedback(
                    connection, item.deployment, item.request_id, label_json, None, who, at
                )
            return self._read(connection, item_id)

    # -- reading -----------------------------------------------------------------------------

    @staticmethod
    def _check_open(item: ReviewItem, who: str) -> None:
        if item.state == "cancelled":
            raise ConflictError(
                f"review item {item.id} is cancelled: its deployment was retired (its items "
                f"are kept under {item.deployment!r})"
            )
        if item.state == "answered":
            raise ConflictError(
                f"review item {item.id} is answered already (by {item.answered_by!r})"
            )
        if item.state == "claimed" and item.claimed_by != who:
            raise ConflictError(f"review item {item.id} is claimed by {item.claimed_by!r}")

    @staticmethod
    def _read(connection: Connection, item_id: int) -> ReviewItem:
        row = connection.execute(sa.select(_items).where(_items.c.id == item_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no review item {item_id}")
        return _item(row)


def _answered(connection: Connection, item: ReviewItem) -> tuple[list[Any] | None, list | None]:
    """The model's own answer for ``item`` (its predictions and classes, see
    :func:`~opsloop.store.label_values.answer_of`): its request's recorded primary answer,
    the one the evaluation and the feedback judge a label by. The suggestion shown holds
    the assertions' overrides (a rule's value, such as ``"decline"``, in place of the
    model's class), so until the answer is recorded only its classes are read from it: the
    kind its class list says, no prediction. ``(None, None)`` when neither says."""
    if item.request_id is not None:
        output = connection.execute(
            sa.select(_events.c.output_json)
            .where(
                _events.c.deployment == item.deployment,
                _events.c.request_id == item.request_id,
                _events.c.role == "primary",
            )
            .order_by(_events.c.at_ms, _events.c.id)
            .limit(1)
        ).scalar()
        predictions, classes = recorded_answer(output)
        if predictions is not None:
            return predictions, classes
    if item.suggestion is None:
        return None, None
    _, classes = answer_of(item.suggestion)
    return [None] * len(item.records), classes


def retire_review_items(connection: Connection, deployment: str, history: str) -> int:
    """As part of ``deployment``'s retire, in the retire's write transaction: cancel its
    items still open or claimed (nobody answers for a deployment that is gone) and keep all
    its items under the name ``history``, so a deployment later created under the same name
    starts with an empty queue; how many were cancelled.

    >>> from opsloop.store import Database
    >>> db = Database("sqlite://")
    >>> with db.write() as c:
    ...     _ = enqueue_item(c, "api", [{"x": 1}], reason="active_learning", at_ms=0)
    ...     retire_review_items(c, "api", "api/retired-1")
    1
    >>> queue = ReviewQueue(db)
    >>> queue.list("api", state="any"), queue.list("api/retired-1", state="cancelled")[0].id
    ((), 1)
    """
    cancelled = connection.execute(
        _items.update()
        .where(_items.c.deployment == deployment, _items.c.state.in_(("open", "claimed")))
        .values(state="cancelled")
    ).rowcount
    connection.execute(
        _items.update().where(_items.c.deployment == deployment).values(deployment=history)
    )
    return cancelled


__all__ = [
    "REVIEW_REASONS",
    "REVIEW_STATES",
    "ReviewItem",
    "ReviewQueue",
    "enqueue_item",
    "retire_review_items",
]
