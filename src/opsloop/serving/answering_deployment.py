"""The deployment that gave an answer, as feedback on the answer must judge it.

Feedback is given under a deployment's name by request id. The answer may be one the
deployment standing under the name gave, or one a deployment of the name that was retired
since gave: its event is kept with that deployment's history, ``NAME/retired-N``
(:mod:`.retired_names`), whether or not a deployment was created again under the name.
:func:`answering_deployment` finds where the answer is kept and how the deployment that gave
it was defined, its strategy and its bandit policy, read from the standing deployment's rows
or, for a retired one, from the audit log's record of its retire (the definition it ended
and the rollout it deleted, :func:`~.rollout_state.retire_rollout`). A reward is then
checked against the bandit that answered, not one created later under the name.

>>> from opsloop.store import Database
>>> with Database("sqlite://").read() as c:
...     answering_deployment(c, "api", "r1")
Traceback (most recent call last):
opsloop.errors.NotFoundError: no deployment named 'api'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import NotFoundError
from opsloop.serving.prediction_feedback import answered_under
from opsloop.serving.retired_names import history_name, retires
from opsloop.store import tables


@dataclass(frozen=True)
class AnsweringDeployment:
    """Where an answer is kept (``home``: the name, or ``NAME/retired-N``), whether the
    deployment standing now gave it (``standing``), that deployment's ``strategy`` and its
    rollout's bandit policy (``bandit``, the policy's ``to_dict``; ``None`` without one).

    >>> AnsweringDeployment("api/retired-1", False, "bandit", None).standing
    False
    """

    home: str
    standing: bool
    strategy: str
    bandit: dict[str, Any] | None


def answering_deployment(connection: Connection, name: str, request_id: str) -> AnsweringDeployment:
    """The deployment of ``name`` that answered ``request_id`` (see the module), in the
    caller's transaction: the standing one when no retired one did (also when no answer
    has the id: the feedback's own check says so). 404 when no deployment of the name
    stands and none was ever retired.

    Against a store where ``api`` was a bandit, retired, and is a single model now:

    >>> from opsloop.serving.prediction_events import PredictionEvent, StoreEventSink
    >>> from opsloop.serving.deployments import Deployments, Variant
    >>> from opsloop.registry import ModelRegistry
    >>> from opsloop.store import ArtifactStore, Database
    >>> db = Database("sqlite://")
    >>> registry = ModelRegistry(db, ArtifactStore(tmp_path))
    >>> _ = registry.register("m", b"x", flavor="onnx")
    >>> deployments = Deployments(db)
    >>> _ = deployments.deploy("api", [Variant("a", "m", version=1, weight=0.5),
    ...     Variant("b", "m", version=1, role="candidate", weight=0.5)], strategy="bandit")
    >>> StoreEventSink(db).write([PredictionEvent("api", "a", "primary", "m", 1, "r1",
    ...     None, [{"x": 1}], {"predictions": [0]}, None, 0.4, 1000)])
    >>> deployments.retire("api")
    >>> with db.read() as c:
    ...     answering_deployment(c, "api", "r1")
    AnsweringDeployment(home='api/retired-1', standing=False, strategy='bandit', bandit=None)
    >>> _ = deployments.deploy("api", [Variant("a", "m", version=1)])
    >>> with db.read() as c:
    ...     answering_deployment(c, "api", "r1").strategy, answering_deployment(c, "api", "r2")
    ('bandit', AnsweringDeployment(home='api', standing=True, strategy='single', bandit=None))
    """
    home = answered_under(connection, name, request_id)
    if home == name:
        return _standing(connection, name)
    number = next(
        n for n in range(retires(connection, name), 0, -1) if history_name(name, n) == home
    )
    return _retired(connection, name, home, number)


def _standing(connection: Connection, name: str) -> AnsweringDeployment:
    strategy = connection.execute(
        sa.select(tables.deployments.c.strategy).where(tables.deployments.c.name == name)
    ).scalar()
    if strategy is None:
        if not retires(connection, name):
            raise NotFoundError(f"no deployment named {name!r}")
        # Only retired deployments had the name; the answer is none of theirs either.
        return AnsweringDeployment(name, False, "", None)
    rollouts = tables.rollouts
    state = connection.execute(
        sa.select(rollouts.c.state_json).where(rollouts.c.deployment == name)
    ).scalar()
    return AnsweringDeployment(name, True, strategy, _bandit(state))


def _bandit(state_json: str | None) -> dict[str, Any] | None:
    state = None if state_json is None else json.loads(state_json)
    if not isinstance(state, dict) or state.get("kind") != "bandit":
        return None
    return state["policy"]


def _retired(connection: Connection, name: str, home: str, number: int) -> AnsweringDeployment:
    """The deployment the ``number``-th retire of ``name`` ended, from that retire's audit
    entries: the definition it ended (the ``retire`` entry's ``before``) and the rollout
    it deleted (the ``set_rollout`` entry with no ``after`` the retire wrote before it)."""
    log = tables.audit_log
    entity = f"deployment:{name}"
    retire = connection.execute(
        sa.select(log.c.id, log.c.before_json)
        .where(log.c.entity == entity, log.c.action == "retire")
        .order_by(log.c.id)
        .offset(number - 1)
        .limit(1)
    ).first()
    if retire is None:
        # The monitor's retires are counted, the definition's are read: a store whose
        # older retires wrote only one of the two cannot say which definition answered.
        raise NotFoundError(
            f"the retired deployment {home!r} has no retire entry of its definition to "
            "read its strategy from"
        )
    defined = connection.execute(
        sa.select(sa.func.max(log.c.id)).where(
            log.c.entity == entity,
            log.c.action.in_(("deploy", "rollback")),
            log.c.id < retire.id,
        )
    ).scalar()
    rollout = connection.execute(
        sa.select(log.c.before_json)
        .where(
            log.c.entity == entity,
            log.c.action == "set_rollout",
            log.c.after_json.is_(None),
            log.c.id > (defined or 0),
            log.c.id < retire.id,
        )
        .order_by(log.c.id.desc())
        .limit(1)
    ).scalar()
    ended = json.loads(retire.before_json)
    state = None if rollout is None else json.dumps(json.loads(rollout)["state"])
    return AnsweringDeployment(home, False, ended["strategy"], _bandit(state))
