"""Retraining asked for by a person (``opsloop monitor retrain``) rather than by a policy: the
same action (:mod:`.retrain_action`: the window since the change point, training, tracking,
registration, the release gate, the canary), recorded the same way.

The window starts at ``since_ms``, by default the change point the monitoring recorded last
for the variant (the ``change_point_ms`` of its latest alert that has one), and ends at
``until_ms``, by default the end of the variant's latest evaluated window: the policy's
``since_change_point`` window, or ``since_date`` when ``since_ms`` is given.
``keep_correct=True`` adds the older labelled rows still correct (the ``keep_correct``
window, :mod:`.training_window`) instead of a share of the reference. The outcome is
audited as a policy's is (action ``policy_retrain``, entity ``monitor:DEPLOYMENT``), the
reason naming who asked; a retraining that did not do its work is an alert.

>>> retrain_on_request(ActionContext(db), "api", train="m:f")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: retrain needs ActionContext(registry=..., gate=...)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.evaluation import read_alerts, read_evaluations
from opsloop.monitoring.iso_time import utc_iso
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.policy_actions import ActionContext, run_action
from opsloop.monitoring.windowing import Windowing


def latest_change_point(db, deployment: str, variant: str) -> int | None:
    """The ``change_point_ms`` of ``variant``'s latest alert that names one.

    >>> print(latest_change_point(db, "api", "default"))
    None
    """
    alerts = read_alerts(db, deployment)
    for _, alert in alerts[alerts["variant"] == variant].iloc[::-1].iterrows():
        found = alert["evidence"].get("change_point_ms")
        if found is not None:
            return int(found)
    return None


def retrain_on_request(
    context: ActionContext,
    deployment: str,
    *,
    train: str,
    variant: str = "default",
    since_ms: int | None = None,
    until_ms: int | None = None,
    windowing: Windowing | None = None,
    reference_share: float = 0.0,
    holdout: float = 0.3,
    min_rows: int = 50,
    keep_correct: bool = False,
    neighbours: int = 5,
    tolerance: float = 3.0,
) -> dict[str, Any]:
    """Retrain ``deployment`` on ``variant``'s labelled rows of ``[since_ms, until_ms)`` with
    the training function ``train`` (``MODULE:FUNCTION``); the action's outcome (see the
    module docstring for the defaults)."""
    if context.registry is None or context.gate is None:
        raise InvalidArgumentError("retrain needs ActionContext(registry=..., gate=...)")
    windowing = windowing or Windowing()
    if keep_correct:
        policy = f"window=keep_correct, neighbours={neighbours}, tolerance={tolerance}"
    elif since_ms is not None:
        policy = f"window=since_date, since={utc_iso(since_ms)}"
    else:
        policy = "window=since_change_point"
    rule = Policy.parse(
        f"error_drift >= 0 -> retrain(train={train}, reference_share={reference_share}, "
        f"holdout={holdout}, min_rows={min_rows}, {policy})"
    )
    rule = replace(rule, signal="request", text=f"retrain requested by {context.acting}")
    if since_ms is None:
        since_ms = latest_change_point(context.db, deployment, variant)
        if since_ms is None:
            raise InvalidArgumentError(
                f"since: no change point is recorded for {deployment!r} variant {variant!r}; "
                "give the time to retrain from"
            )
    if until_ms is None:
        evaluated = [
            e.start_ms
            for e in read_evaluations(context.db, deployment, windowing)
            if e.variant == variant
        ]
        if not evaluated:
            raise InvalidArgumentError(
                f"until: {deployment!r} variant {variant!r} has no evaluated window of "
                f"{windowing.window_ms} ms; evaluate first, or give the end of the data"
            )
        until_ms = max(evaluated) + windowing.window_ms
    if until_ms <= since_ms:
        raise InvalidArgumentError(f"until: after since ({since_ms} ms), got {until_ms} ms")
    evidence = {
        "signal": "request",
        "windows": [],
        "requested_by": context.acting,
        "change_point_ms": int(since_ms),
        # The action reads the data up to the end of the window that fired: here, until_ms.
        "start_ms": int(until_ms) - windowing.window_ms,
        "window_ms": windowing.window_ms,
    }
    return run_action(context, deployment, variant, rule, evidence)
