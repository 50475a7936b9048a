"""What the policies of a deployment's monitor stand at and what their actions did, read
from what the evaluation stores (:mod:`.evaluation`, :mod:`.policy_actions`), so a reader
needs neither the monitor's state rows nor the whole audit log.

:func:`read_actions` gives four lists:

* ``policies``: every rule applied to a variant's windows of one length, with its current
  streak as of the last window it was applied to (``streak``: how many windows held since
  it began, passing over those where its signal was undefined, and breaking at one where the
  condition was false; ``streak_windows``: the latest of them, up to the windows the rule
  needs and at most :data:`~.policy_streak.MAX_LISTED_HELD`; ``streak_first_listed``: how
  many of those, the oldest, are instead the first windows of a streak an earlier version
  saved, not known to be the latest until as many more hold, 0 otherwise;
  ``streak_start_ms``: the start of the first; ``streak_skipped``: the windows without a
  verdict listed among those, at most :data:`~.policy_streak.MAX_LISTED_SKIPPED`, and
  ``streak_skipped_count`` counting all since it began; :mod:`.policy_streak`), the
  windows it needs, and how often and when
  it last fired (its alerts; an alert recorded because an action failed is an outcome, not
  a firing);
* ``pending``: the actions recorded with their alert and not run yet (a process stopped
  before it ran them, a ``retrain`` whose evaluation had no registry, a ``promote`` that
  waits for the primary's windows);
* ``running``: the actions in flight, whose outcome is not recorded yet: running now, or
  run by a process that died and not yet found so (:mod:`.running_actions`; the next
  evaluation records such an action as ``interrupted``);
* ``outcomes``: the newest ``last`` outcomes of the actions, newest first, from the audit
  log (actions ``policy_webhook``, ``policy_rollback``, ``policy_retrain``,
  ``policy_promote`` of entity ``monitor:DEPLOYMENT``; those since a deployment of this
  name was last retired), with what each action reported as
  its ``evidence`` and the policy's evidence in words (``why``); ``outcomes_total`` counts
  them all.

>>> import pandas as pd
>>> from opsloop.monitoring.evaluation import evaluate
>>> from opsloop.monitoring.event_log import log_predictions
>>> from opsloop.monitoring.reference import set_reference
>>> db.clock = lambda: 7_200_000
>>> _ = set_reference(db, "api", pd.DataFrame({"x": [i * 0.37 for i in range(200)]}))
>>> _ = log_predictions(db, "api", [{"x": 50.0 + i} for i in range(60)], [0] * 60,
...                     at_ms=60_000)
>>> _ = evaluate(db, "api", policies=["drift_share > 0.5 for 2 windows -> alert"])
>>> (policy,) = read_actions(db, "api")["policies"]
>>> policy["rule"], policy["streak"], policy["windows"], policy["fired"]
('drift_share > 0.5 for 2 windows -> alert', 1, 2, 0)
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.evaluation import read_alerts
from opsloop.monitoring.monitor_state import get_state
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.policy_streak import (
    MAX_LISTED_SKIPPED,
    first_listed,
    held,
    load,
    skipped,
)
from opsloop.monitoring.running_actions import running_actions
from opsloop.monitoring.windowing import Windowing
from opsloop.store import tables
from opsloop.store.database import Database

#: The audit actions that record an action's outcome.
OUTCOME_ACTIONS = ("policy_webhook", "policy_rollback", "policy_retrain", "policy_promote")
# The keys of an outcome's audit entry that the outcome's row gives as its own columns.
_OUTCOME_FIELDS = ("variant", "action", "rule", "status", "reason")

_state, _log = tables.monitoring_state, tables.audit_log


def _streak_variants(connection, deployment: str, window_ms: int) -> list[str]:
    """The variants with policy streaks for windows of ``window_ms``, in name order."""
    names = connection.execute(
        sa.select(_state.c.name).where(
            _state.c.deployment == deployment, _state.c.name.like("policies:%")
        )
    ).scalars()
    found = []
    for name in names:
        # The state's name is "policies:VARIANT:WINDOW_MS"; a variant may hold a colon.
        variant, _, length = name.removeprefix("policies:").rpartition(":")
        if length == str(window_ms):
            found.append(variant)
    return sorted(found)


def _rule_fields(text: str) -> dict[str, Any]:
    try:
        rule = Policy.parse(text)
    except InvalidArgumentError:  # a rule kept from a grammar this version no longer reads
        return {"signal": None, "op": None, "threshold": None, "windows": None, "action": None}
    return {
        "signal": rule.signal,
        "op": rule.op,
        "threshold": rule.threshold,
        "windows": rule.windows,
        "action": rule.action,
    }


def _why(entry_reason: str | None, status: str, reason: str) -> str | None:
    """The policy's evidence in words, from the audit entry's reason, which
    :func:`~opsloop.monitoring.policy_actions.run_action` writes as ``STATUS: REASON (WHY)``.

    >>> _why("done: sent (policy 'a' held: x 1 in the window from 1970-01-01T00:00:00Z)",
    ...      "done", "sent")
    "policy 'a' held: x 1 in the window from 1970-01-01T00:00:00Z"
    >>> _why("written by hand", "done", "sent") is None
    True
    """
    head = f"{status}: {reason} ("
    if entry_reason is None or not entry_reason.startswith(head) or not entry_reason.endswith(")"):
        return None
    return entry_reason[len(head) : -1]


def _outcomes(connection, deployment: str, variant: str | None, last: int):
    entity = f"monitor:{deployment}"
    # A deployment retired under this name left its outcomes with its history
    # (:mod:`.retired_monitoring`): the monitor's outcomes are those since.
    retired = (
        sa.select(sa.func.max(_log.c.id))
        .where(_log.c.entity == entity, _log.c.action == "retire")
        .scalar_subquery()
    )
    query = (
        sa.select(_log.c.at_ms, _log.c.actor, _log.c.reason, _log.c.after_json)
        .where(
            _log.c.entity == entity,
            _log.c.action.in_(OUTCOME_ACTIONS),
            _log.c.id > sa.func.coalesce(retired, 0),
        )
        .order_by(_log.c.id.desc())
    )
    rows, total = [], 0
    for at_ms, actor, entry_reason, after_json in connection.execute(query):
        after = json.loads(after_json) if after_json else {}
        if variant is not None and after.get("variant") != variant:
            continue
        total += 1
        if len(rows) == last:
            continue
        status, reason = str(after.get("status")), str(after.get("reason"))
        rows.append(
            {
                "at_ms": int(at_ms),
                "actor": actor,
                "variant": after.get("variant"),
                "rule": after.get("rule"),
                "action": after.get("action"),
                "status": status,
                "reason": reason,
                "why": _why(entry_reason, status, reason),
                "evidence": {k: v for k, v in after.items() if k not in _OUTCOME_FIELDS},
            }
        )
    return rows, total


def read_actions(
    db: Database,
    deployment: str,
    windowing: Windowing | None = None,
    *,
    variant: str | None = None,
    last: int = 50,
) -> dict[str, Any]:
    """The policies' rules and streaks on windows of ``windowing``'s length, the actions
    pending and the newest ``last`` outcomes (one ``variant``'s, or every variant's) of
    ``deployment``, as a JSON-safe dict (see the module docstring).

    >>> read_actions(db, "nothing-yet", last=0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: last: at least 1, got 0
    """
    windowing = windowing or Windowing()
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise InvalidArgumentError(f"last: at least 1, got {last!r}")
    alerts = read_alerts(db, deployment)
    with db.read() as connection:
        variants = _streak_variants(connection, deployment, windowing.window_ms)
        if variant is not None:
            variants = [v for v in variants if v == variant]
        streaks = {
            v: get_state(connection, deployment, f"policies:{v}:{windowing.window_ms}", {})
            for v in variants
        }
        pending = get_state(connection, deployment, "pending_actions", [])
        running = running_actions(connection, deployment)
        outcomes, total = _outcomes(connection, deployment, variant, last)
    policies = []
    for v in variants:
        for text, stored in streaks[v].items():
            fields = _rule_fields(text)
            # A rule this version no longer reads keeps what it saved, bounded all the same.
            streak = load(stored, fields["windows"] or MAX_LISTED_SKIPPED)
            # A firing is an alert of the rule with the rule's own action, on this length's
            # windows; an alert that a failed action recorded has the action "alert".
            fired = [
                a
                for a in alerts.to_dict("records")
                if a["variant"] == v
                and a["rule"] == text
                and a["action"] == fields["action"]
                and a["evidence"].get("window_ms") == windowing.window_ms
            ]
            newest = fired[-1] if fired else None
            policies.append(
                {
                    "variant": v,
                    "rule": text,
                    **fields,
                    "streak": streak["held"],
                    # A streak of an input anomaly rule also keeps each window's counts
                    # for the alert's evidence; the standing shows the signal's values.
                    "streak_windows": [
                        {"start_ms": w["start_ms"], "value": w["value"]} for w in held(streak)
                    ],
                    "streak_start_ms": streak.get("since_ms"),
                    "streak_first_listed": first_listed(streak),
                    "streak_skipped": skipped(streak),
                    "streak_skipped_count": streak["skipped"],
                    "fired": len(fired),
                    "last_fired_ms": None if newest is None else int(newest["at_ms"]),
                    "last_fired_start_ms": None if newest is None else newest["start_ms"],
                }
            )
    return {
        "deployment": deployment,
        "window_ms": windowing.window_ms,
        "policies": policies,
        "pending": [
            {
                "variant": item["variant"],
                "rule": item["rule"],
                "action": _rule_fields(item["rule"])["action"],
                "start_ms": item["evidence"].get("start_ms"),
                "evidence": item["evidence"],
            }
            for item in pending
            if variant is None or item["variant"] == variant
        ],
        "running": [
            {
                "variant": item["variant"],
                "rule": item["rule"],
                "action": _rule_fields(item["rule"])["action"],
                "action_id": item["id"],
                "started_ms": item["started_ms"],
                "worker": f"{item['process']['host']}:{item['process']['pid']}",
            }
            for item in running
            if variant is None or item["variant"] == variant
        ],
        "outcomes": outcomes,
        "outcomes_total": total,
    }
