"""Alerts in the store: one row of ``monitoring_alerts`` and its audit entry (action
``alert``, entity ``monitor:DEPLOYMENT``), written in the caller's transaction.

>>> from opsloop.registry.audit import audit_entries
>>> with db.write() as connection:
...     record_alert(connection, "api", "default", "error_rate > 0.1 -> alert", "alert",
...                  {"signal": "error_rate", "windows": []}, "policy held")
>>> audit_entries(db, entity="monitor:api")[["action", "reason"]].values.tolist()
[['alert', 'policy held']]
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Connection

from opsloop.registry.audit import append_audit
from opsloop.store import tables
from opsloop.store.database import clock_of

_alerts = tables.monitoring_alerts


def record_alert(
    connection: Connection,
    deployment: str,
    variant: str,
    rule: str,
    action: str,
    evidence: dict[str, Any],
    reason: str,
    actor: str = "monitoring",
) -> None:
    """Keep an alert of ``rule`` (whose action is ``action``) with its ``evidence``."""
    now = clock_of(connection)
    # Plain JSON values only: the audit log hashes a canonical JSON of what it keeps.
    evidence = json.loads(json.dumps(evidence, default=str))
    connection.execute(
        _alerts.insert().values(
            deployment=deployment,
            variant=variant,
            rule=rule,
            action=action,
            evidence_json=json.dumps(evidence),
            at_ms=now,
        )
    )
    append_audit(
        connection,
        actor,
        "alert",
        f"monitor:{deployment}",
        reason,
        None,
        {"variant": variant, "rule": rule, "evidence": evidence},
        at_ms=now,
    )
