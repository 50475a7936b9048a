"""The follower: the process a user starts, where they trust their training function to
run, that takes the retrain requests a server's monitoring queued
(:mod:`.retrain_queue`) and does what the local ``retrain`` action does
(:mod:`.retrain_action`), through the control plane's operations.

For each request it claims (only those whose ``train`` is the follower's own):

1. reads the request's training rows from the monitoring, page by page, each page checked
   to come from the same window (its sha256);
2. trains with its own training function, tracks the run, registers the version, runs the
   release gate on the held-out rows and, when it passes, starts the canary and moves the
   ``challenger`` alias (:func:`~opsloop.monitoring.retrain_action.retrain_on_window`), as
   the token's owner, so every rule of the registry and the deployments applies;
3. reports the outcome, which the monitoring audits as the action's (a report refused
   because the claim's lease ran out and another follower took the request is said in the
   outcome's ``reported``, and the follower goes on).

``monitoring`` is any :class:`~opsloop.monitoring.monitoring_service.MonitoringService`:
:class:`~opsloop.monitoring.http_monitoring.HttpMonitoring` with the server's registry,
deployments and tracking in the context (``remote=True``), or the local
:class:`~opsloop.monitoring.local_monitoring.Monitoring` with local ones.

>>> from opsloop.monitoring.local_monitoring import Monitoring
>>> from opsloop.monitoring.policy_actions import ActionContext
>>> follow_retrains(Monitoring(db), "api", ActionContext(db), train="m:f", once=True)
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: gate: a follower needs ActionContext(registry=..., gate=...)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd

from opsloop.errors import ConflictError, InvalidArgumentError
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.policy_actions import ActionContext, attempted
from opsloop.monitoring.retrain_action import retrain_on_window
from opsloop.monitoring.retrain_queue import DEFAULT_LEASE_S, MAX_ROWS_PER_PAGE
from opsloop.monitoring.training_window import TrainingWindow
from opsloop.tracking.limits import MAX_TEXT_LENGTH


def claimed_window(
    monitoring: Any, deployment: str, claimed: dict[str, Any], *, page: int = MAX_ROWS_PER_PAGE
) -> TrainingWindow:
    """The training rows of the ``claimed`` request, read page by page."""
    rows: list[dict] = []
    columns, window = None, claimed["window"]
    while True:
        part = monitoring.retrain_rows(
            deployment, claimed["id"], claim=claimed["claim"], offset=len(rows), limit=page
        )
        if part["window"]["sha256"] != window["sha256"]:
            raise ConflictError(
                f"retrain request {claimed['id']}: its rows changed while they were read "
                f"(sha256 {part['window']['sha256'][:12]}, claimed {window['sha256'][:12]})"
            )
        columns = part["columns"]
        rows += part["rows"]
        if not part["rows"] or len(rows) >= part["total"]:
            break
    frame = pd.DataFrame.from_records(rows, columns=columns)
    return TrainingWindow(
        frame,
        int(window["start_ms"]),
        int(window["end_ms"]),
        int(window["new_rows"]),
        int(window["reference_rows"]),
        window["sha256"],
        window.get("policy", "since_change_point"),
        int(window.get("older_rows", 0)),
    )


def _plain(value: Any) -> Any:
    """``value`` with numbers JSON cannot carry (NaN, infinities) as ``None``.

    >>> _plain({"a": [1.0, float("nan")], "b": {"c": float("inf")}})
    {'a': [1.0, None], 'b': {'c': None}}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def run_claimed(
    monitoring: Any, deployment: str, context: ActionContext, claimed: dict[str, Any]
) -> dict[str, Any]:
    """Retrain for the ``claimed`` request and report the outcome; the outcome."""
    rule = Policy.parse(
        f"error_drift >= 0 -> retrain(train={claimed['train']}, "
        f"reference_share={claimed['reference_share']}, holdout={claimed['holdout']}, "
        f"min_rows={claimed['min_rows']})"
    )
    rule = replace(rule, text=claimed["rule"])
    # The server wrote the window's audit entry at the claim: no store is written here.
    acting = replace(context, db=None, actor=context.actor or claimed["claimed_by"])
    outcome = attempted(
        lambda: retrain_on_window(
            acting,
            deployment,
            rule,
            claimed["evidence"],
            claimed_window(monitoring, deployment, claimed),
        )
    )
    reason = str(outcome["reason"])[:MAX_TEXT_LENGTH]
    details = _plain({k: v for k, v in outcome.items() if k not in ("status", "reason")})
    try:
        monitoring.report_retrain(
            deployment,
            claimed["id"],
            claim=claimed["claim"],
            status=outcome["status"],
            reason=reason,
            details=details,
        )
        reported = "reported"
    except ConflictError as error:
        # The lease ran out and another follower holds the request now: what was done here
        # stays done (and audited by the operations that did it), but is not its outcome.
        reported = f"not reported: {error}"
    return {
        "request_id": claimed["id"],
        "action": "retrain",
        "rule": claimed["rule"],
        **outcome,
        "reported": reported,
    }


def follow_retrains(
    monitoring: Any,
    deployment: str,
    context: ActionContext,
    *,
    train: str,
    follower: str = "follower",
    lease_s: int = DEFAULT_LEASE_S,
    once: bool = False,
    poll_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    on_outcome: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Claim and run ``deployment``'s retrain requests that train with ``train``, one at a
    time, as ``follower``; with ``once``, until none is left, else forever, asking again
    every ``poll_s`` seconds. Each outcome goes to ``on_outcome``; the outcomes."""
    if context.registry is None or context.gate is None:
        raise InvalidArgumentError("gate: a follower needs ActionContext(registry=..., gate=...)")
    outcomes = []
    while True:
        claimed = monitoring.claim_retrain(
            deployment, train=train, label=context.gate.label, follower=follower, lease_s=lease_s
        )
        if claimed is None:
            if once:
                return outcomes
            sleep(poll_s)
            continue
        outcome = run_claimed(monitoring, deployment, context, claimed)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
