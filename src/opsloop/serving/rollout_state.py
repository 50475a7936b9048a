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


def delete_rollout(connection: Connection, deployment: str) -> None:
    """Forget ``deployment``'s rollout (its history stays in the audit log).

    >>> with Database("sqlite://").write() as c:
    ...     delete_rollout(c, "api")
    """
    connection.execute(_rollouts.delete().where(_rollouts.c.deployment == deployment))


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
