"""An action's outcome in the store: its audit entry (action ``policy_ACTION``, entity
``monitor:DEPLOYMENT``, the reason ``STATUS: REASON (WHY)``), and, when the action did not
do its work, an alert whose evidence is the policy's evidence plus the outcome. A retrain
``queued`` for a follower (:mod:`.retrain_queue`) has not failed: it is no alert.

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

from opsloop.monitoring.alert_log import record_alert
from opsloop.monitoring.rollback_action import evidence_sentence
from opsloop.registry.audit import append_audit, lock_audit_log
from opsloop.store.database import Database

#: The statuses of an action that did its work, or handed it on: no alert for them.
NOT_FAILED = ("done", "queued")


def record_outcome(
    db: Database,
    actor: str,
    deployment: str,
    variant: str,
    rule: str,
    evidence: dict[str, Any],
    outcome: dict[str, Any],
) -> None:
    """Audit ``outcome`` (with ``action``, ``status`` and ``reason``) of ``rule``'s action,
    fired with ``evidence`` in ``variant``'s windows; an alert too unless it is
    ``done`` or ``queued``."""
    why = evidence_sentence(rule, evidence)
    with db.write() as connection:
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
