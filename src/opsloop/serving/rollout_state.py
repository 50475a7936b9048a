"""A deployment's rollout in the store: its policy and the state every worker shares.

One row per deployment (``rollouts``): the :class:`~.rollout_policy.RolloutPolicy` set
through the control plane, who set it, and the state as JSON (a canary's step, request
counts and gate statistics; a bandit's per-arm sums). A worker changes the state inside one
write transaction that first takes the row (:func:`locked_rollout`: ``SELECT ... FOR
UPDATE`` on PostgreSQL; SQLite's write transactions are serial already), so two workers'
updates are applied one after the other and no count is lost.

>>> from opsloop.store import Database
>>> from opsloop.serving.rollout_policy import RolloutPolicy
>>> db = Database("sqlite://")
>>> with db.write() as c:
...     write_rollout(c, "api", RolloutPolicy(), {"kind": "canary", "step": 0}, "ana", 5)
>>> with db.write() as c:
...     policy, state, set_by = locked_rollout(c, "api")
...     write_rollout(c, "api", policy, {**state, "step": 1}, set_by, 6)
>>> read_rollout(db, "api")["state"]
{'kind': 'canary', 'step': 1}
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.registry.audit import append_audit
from opsloop.serving.rollout_policy import RolloutPolicy
from opsloop.store import tables
from opsloop.store.database import Database

_rollouts = tables.rollouts


def locked_rollout(
    connection: Connection, deployment: str
) -> tuple[RolloutPolicy, dict[str, Any], str] | None:
    """The policy, state and setter of ``deployment``'s rollout, its row held until the
    transaction ends (``None`` when it has none).

    >>> with Database("sqlite://").write() as c:
    ...     locked_rollout(c, "api") is None
    True
    """
    row = (
        connection.execute(
            sa.select(_rollouts).where(_rollouts.c.deployment == deployment).with_for_update()
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    policy = RolloutPolicy.from_dict(json.loads(row["policy_json"]))
    return policy, json.loads(row["state_json"]), row["set_by"]


def write_rollout(
    connection: Connection,
    deployment: str,
    policy: RolloutPolicy,
    state: dict[str, Any],
    set_by: str,
    at_ms: int,
) -> None:
    """Keep ``deployment``'s rollout (insert or replace) in the caller's transaction.

    >>> with Database("sqlite://").write() as c:
    ...     write_rollout(c, "api", RolloutPolicy(), {"kind": "bandit"}, "ana", 5)
    """
    values = {
        "policy_json": json.dumps(policy.to_dict()),
        "state_json": json.dumps(state),
        "set_by": set_by,
        "updated_ms": at_ms,
    }
    updated = connection.execute(
        _rollouts.update().where(_rollouts.c.deployment == deployment).values(**values)
    ).rowcount
    if not updated:
        connection.execute(_rollouts.insert().values(deployment=deployment, **values))


def write_rollout_state(connection: Connection, deployment: str, state: dict[str, Any]) -> None:
    """Replace the state of ``deployment``'s rollout (read with :func:`locked_rollout` in
    the same transaction), its policy, setter and time kept.

    >>> db = Database("sqlite://")
    >>> with db.write() as c:
    ...     write_rollout(c, "api", RolloutPolicy(), {"kind": "canary", "step": 0}, "ana", 5)
    ...     write_rollout_state(c, "api", {"kind": "canary", "step": 1})
    >>> read_rollout(db, "api")["state"], read_rollout(db, "api")["updated_ms"]
    ({'kind': 'canary', 'step': 1}, 5)
    """
    connection.execute(
        _rollouts.update()
        .where(_rollouts.c.deployment == deployment)
        .values(state_json=json.dumps(state))
    )


def retire_rollout(
    connection: Connection, deployment: str, actor: str, reason: str | None, at_ms: int
) -> dict[str, Any] | None:
    """Delete ``deployment``'s rollout as part of its retire, in the retire's write
    transaction, so a deployment later created under the same name starts without a ramp,
    gates or bandit sums; audited as a ``set_rollout`` entry by the retire's actor with its
    reason, whose ``before`` is the evidence of where it stood (its policy, and its state:
    a canary's step and gate statistics, a bandit's sums) and ``after`` null. What was
    deleted, or ``None`` when it had none (then nothing is audited).

    >>> from opsloop.registry.audit import audit_entries
    >>> db = Database("sqlite://")
    >>> with db.write() as c:
    ...     write_rollout(c, "api", RolloutPolicy(), {"kind": "canary", "step": 2}, "ana", 5)
    ...     retire_rollout(c, "api", "bo", "moved", 6)["state"]
    {'kind': 'canary', 'step': 2}
    >>> entry = audit_entries(db, entity="deployment:api").iloc[-1]
    >>> entry["action"], entry["before"]["state"]["step"], entry["after"]
    ('set_rollout', 2, None)
    >>> with db.write() as c:
    ...     retire_rollout(c, "api", "bo", None, 7) is None
    True
    """
    found = locked_rollout(connection, deployment)
    if found is None:
        return None
    policy, state, set_by = found
    before = {"policy": policy.to_dict(), "state": state, "set_by": set_by}
    connection.execute(_rollouts.delete().where(_rollouts.c.deployment == deployment))
    append_audit(
        connection, actor, "set_rollout", f"deployment:{deployment}", reason, before, None,
        at_ms=at_ms,
    )  # fmt: skip
    return before


def read_rollout(db: Database, deployment: str) -> dict[str, Any] | None:
    """``deployment``'s rollout as a document (policy, state, set_by, updated_ms), or
    ``None`` when it has none.

    >>> read_rollout(Database("sqlite://"), "api") is None
    True
    """
    with db.read() as connection:
        row = (
            connection.execute(sa.select(_rollouts).where(_rollouts.c.deployment == deployment))
            .mappings()
            .first()
        )
    if row is None:
        return None
    return {
        "deployment": deployment,
        "policy": json.loads(row["policy_json"]),
        "state": json.loads(row["state_json"]),
        "set_by": row["set_by"],
        "updated_ms": row["updated_ms"],
    }
