"""An action's outcome in the store: its audit entry (action ``policy_ACTION``, entity
``monitor:DEPLOYMENT``, the reason ``STATUS: REASON (WHY)``), and, when the action did not
do its work, an alert whose evidence is the policy's evidence plus the outcome. A retrain
``queued`` for a follower (:mod:`.retrain_queue`) has not failed: it is no alert. An action
in flight (:mod:`.running_actions`) leaves the actions in flight in its outcome's
transaction, so an outcome is recorded once and an action with none is still there.

>>> from opsloop.monitoring.evaluation import read_alerts
>>> evidence = {"signal": "error_rate", "windows": [{"start_ms": 0, "value": 0.3}]}
>>> record_outcome(db, "ana", "api", "default", "error_rate > 0.1 -> rollback", evidence,
...                {"action": "rollback", "status": "refused", "reason": "protected"})
>>> read_alerts(db, "api")["evidence"][0]["failed_action"]["reason"]
'protected'
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Connection

from opsloop.monitoring.alert_log import record_alert
from opsloop.monitoring.monitor_state import lock_monitor
from opsloop.monitoring.rollback_action import evidence_sentence
from opsloop.monitoring.running_actions import action_home, finish_action
from opsloop.registry.audit import append_audit, lock_audit_log
from opsloop.store.database import Database

#: The statuses of an action that did its work, handed it on, or was called off with its
#: deployment's retire: no alert for them.
NOT_FAILED = ("done", "queued", "cancelled")


def record_outcome(
    db: Database,
    actor: str,
    deployment: str,
    variant: str,
    rule: str,
    evidence: dict[str, Any],
    outcome: dict[str, Any],
    *,
    action_id: str | None = None,
) -> None:
    """Audit ``outcome`` (with ``action``, ``status`` and ``reason``) of ``rule``'s action,
    fired with ``evidence`` in ``variant``'s windows; an alert too unless it is
    ``done`` or ``queued``. With ``action_id``, the action in flight it ends."""
    with db.write() as connection:
        if action_id is not None:
            # The monitor's lock before the audit log's, the order every writer takes them.
            lock_monitor(connection, deployment)
            # Retired while it ran: the outcome goes with the retired deployment's history.
            deployment = action_home(connection, deployment, action_id)
            finish_action(connection, deployment, action_id)
        record_outcome_in(connection, actor, deployment, variant, rule, evidence, outcome)


def record_outcome_in(
    connection: Connection,
    actor: str,
    deployment: str,
    variant: str,
    rule: str,
    evidence: dict[str, Any],
    outcome: dict[str, Any],
) -> None:
    """:func:`record_outcome` in the caller's write transaction."""
    why = evidence_sentence(rule, evidence)
    lock_audit_log(connection)
    append_audit(
        connection,
        actor,
        f"policy_{outcome['action']}",
        f"monitor:{deployment}",
        f"{outcome['status']}: {outcome['reason']} ({why})",
        None,
        json.loads(json.dumps({"variant": variant, **outcome}, default=str)),
    )
    if outcome["status"] not in NOT_FAILED:
        record_alert(
            connection,
            deployment,
            variant,
            rule,
            "alert",
            {**evidence, "failed_action": outcome},
            f"{outcome['action']} {outcome['status']}: {outcome['reason']}",
            actor=actor,
        )
