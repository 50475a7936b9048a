"""A rollout's decisions in the audit log: what a ramp decided, kept as a field of its own.

When a canary's ramp takes a step, completes or rolls back (:mod:`.canary_rollout`), the
audited change it makes carries the decision in the audit entry's ``decision`` field,
hashed with the entry (:func:`~opsloop.registry.audit.entry_hash`)::

    {"rollout": "canary", "action": "rollback", "share": 0.0, "stable": "stable",
     "candidate": "canary", "evidence": {"failed_gate": "errors", "gates": {...}, ...}}

The reason keeps the sentence people read. Readers (the dashboard's results page, the demo)
know a decision by this field, never by the reason's text, which anyone allowed to deploy
can type.

Only the ramp's own path writes the field. No operation a client calls (deploy, rollback,
switch, approve; over HTTP or in Python) takes one, and :func:`check_decision`, run in the
change's locked write transaction, accepts a decision only when it is the one the
deployment's rollout holds now, still pending (its state keeps the last decision, written in
the transaction that made it) and no entry since the rollout was set carries it yet; the
same transaction marks it ``carried_out`` in the state, so the state says a change was made
exactly when the audit log does.

>>> from opsloop.serving.canary_rollout import Transition
>>> document = decision_document(Transition("step", 0.5, {"step": 1, "at_ms": 7}),
...                              "stable", "canary")
>>> document["action"], document["share"], document["evidence"]
('step', 0.5, {'step': 1, 'at_ms': 7})
>>> _stored_form(document)
{'action': 'step', 'share': 0.5, 'step': 1, 'at_ms': 7}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import ConflictError
from opsloop.serving.rollout_state import locked_rollout, write_rollout_state
from opsloop.store import tables

#: The ``rollout`` of a canary ramp's decisions.
CANARY = "canary"
#: A decision's ``outcome`` in the ramp's state (:mod:`.canary_rollout`, which names the
#: third, ``not_carried_out``) while its change is to be made, and once it is.
PENDING = "pending"
CARRIED_OUT = "carried_out"


def decision_outcome(kept: Mapping[str, Any] | None) -> str | None:
    """What became of a decision the ramp's state keeps: its ``outcome``, ``pending`` when
    it has none (a state written before outcomes were kept: whether its change was made is
    then read from the audit log once it is past its lease, see
    :func:`~.canary_rollout.stale_pending`); ``None`` for no decision.

    >>> decision_outcome({"action": "step"}), decision_outcome(None)
    ('pending', None)
    """
    return None if kept is None else kept.get("outcome", PENDING)


def decision_document(transition: Any, stable: str, candidate: str) -> dict[str, Any]:
    """The audit entry's ``decision`` for ``transition`` (a
    :class:`~.canary_rollout.Transition`) of the ramp from ``stable`` to ``candidate``.

    >>> from opsloop.serving.canary_rollout import Transition
    >>> sorted(decision_document(Transition("rollback", 0.0, {}), "a", "b"))
    ['action', 'candidate', 'evidence', 'rollout', 'share', 'stable']
    """
    return {
        "rollout": CANARY,
        "action": transition.action,
        "share": float(transition.share),
        "stable": stable,
        "candidate": candidate,
        "evidence": dict(transition.evidence),
    }


def _stored_form(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The decision as the ramp's state keeps it (see
    :func:`~.canary_rollout.observe_request`): a rollback's evidence names the share it
    failed at, a step's the share it moves to."""
    evidence = dict(decision["evidence"])
    if decision["action"] == "rollback":
        return {"action": "rollback", **evidence}
    return {"action": decision["action"], "share": decision["share"], **evidence}


def _decided(kept: Mapping[str, Any]) -> dict[str, Any]:
    """A decision as the ramp's state keeps it, without what became of it (its
    ``outcome``, see :func:`~.canary_rollout.not_carried_out`).

    >>> _decided({"action": "step", "share": 0.5, "outcome": "pending"})
    {'action': 'step', 'share': 0.5}
    """
    return {k: v for k, v in kept.items() if k not in ("outcome", "not_carried_out")}


def _text(value: object) -> str:
    # Through JSON and back: the state was read from JSON, the decision was not yet.
    return json.dumps(json.loads(json.dumps(value)), sort_keys=True)


def _first_step(state: Mapping[str, Any], decision: Mapping[str, Any]) -> bool:
    """Whether ``decision`` is the move to the ramp's first share, which setting the
    rollout makes before any request was judged (its state has no decision yet)."""
    return (
        state.get("decision") is None
        and state.get("step") == 0
        and decision["action"] == "step"
        and decision["evidence"] == {"step": 0}
        and decision["share"] == state.get("share")
    )


def check_decision(connection: Connection, name: str, decision: Mapping[str, Any]) -> None:
    """Refuse (409) to record ``decision`` for deployment ``name`` unless its canary
    rollout holds it now (the ramp's state, read locked in the caller's transaction) and
    no audit entry of the deployment written since the rollout was set carries it yet.

    >>> from opsloop.store import Database
    >>> from opsloop.serving.canary_rollout import Transition
    >>> with Database("sqlite://").write() as c:
    ...     check_decision(c, "api", decision_document(Transition("step", 1.0, {}), "a", "b"))
    Traceback (most recent call last):
    opsloop.errors.ConflictError: decision: deployment 'api' has no canary rollout whose ...
    """
    found = locked_rollout(connection, name)
    state = None if found is None else found[1]
    kept = None if state is None else state.get("decision")
    ours = (
        state is not None
        and decision.get("rollout") == CANARY
        and state.get("kind") == CANARY
        and state.get("stable") == decision.get("stable")
        and state.get("candidate") == decision.get("candidate")
    )
    same = ours and kept is not None and _text(_decided(kept)) == _text(_stored_form(decision))
    if same and decision_outcome(kept) == CARRIED_OUT:
        raise ConflictError(
            f"decision: deployment {name!r} carried out this decision already (its rollout's "
            "state says so)"
        )
    holds = ours and (_first_step(state, decision) or (same and decision_outcome(kept) == PENDING))
    if not holds:
        raise ConflictError(
            f"decision: deployment {name!r} has no canary rollout whose decision this is"
        )
    made = decision_entry(connection, name, decision)
    if made is not None:
        raise ConflictError(
            f"decision: deployment {name!r} carried out this decision already (entry {made})"
        )
    if state is not None and state.get("decision") is not None:
        # Made in this transaction: the state says so exactly when the change is made, and
        # the retries of changes not carried out before it end.
        state["decision"]["outcome"] = CARRIED_OUT
        state.pop("retrying", None)
        write_rollout_state(connection, name, state)


def decision_entry(connection: Connection, name: str, decision: Mapping[str, Any]) -> int | None:
    """The id of the audit entry of deployment ``name``, written since its rollout was
    last set, that carries ``decision`` (as :func:`decision_document` makes it); ``None``
    when none does: the change was not made.

    >>> from opsloop.store import Database
    >>> from opsloop.serving.canary_rollout import Transition
    >>> with Database("sqlite://").read() as c:
    ...     decision_entry(c, "api", decision_document(Transition("step", 1.0, {}), "a", "b"))
    """
    log = tables.audit_log
    entity = f"deployment:{name}"
    # Since this rollout was set: a rollout set again may take the same first step.
    since = connection.execute(
        sa.select(sa.func.max(log.c.id)).where(
            log.c.entity == entity, log.c.action == "set_rollout"
        )
    ).scalar()
    text = json.dumps(dict(decision), sort_keys=True, separators=(",", ":"))
    return connection.execute(
        sa.select(log.c.id)
        .where(log.c.entity == entity, log.c.id > (since or 0), log.c.decision == text)
        .limit(1)
    ).scalar()


def decision_of(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """The rollout decision an audit entry (a row of the history's frame) carries, ``None``
    for a change a person or another process made, whatever its reason says.

    >>> decision_of({"action": "deploy", "reason": "rollout: forged", "decision": None})
    >>> decision_of({"action": "deploy", "decision": {"rollout": "canary", "action": "step"}})
    {'rollout': 'canary', 'action': 'step'}
    """
    decision = entry.get("decision")
    if not isinstance(decision, dict) or decision.get("rollout") != CANARY:
        return None
    return decision
