"""The ``promote`` action: make a challenger (a canary's candidate, or a shadow) that the
monitoring judged better the deployment's primary, and point the model's alias at it,
through the same audited, approval-checked operations as a rollback.

**When a challenger is judged better.** A ``promote`` rule is read as what a good variant
shows (``task_metric > 0.9 for 3 windows -> promote``), so it needs an ordering operator:
``>`` or ``>=`` say higher is better, ``<`` or ``<=`` lower. The rule must hold in the
windows of a variant that is not the primary, *and* in each window of the streak the
challenger's value of the signal must be at least as good as the primary's value in the
same window (from the primary's evaluation of it). A window where the primary has no value
(no labels, no traffic) cannot judge, and the promotion is refused. Because of that
comparison, a promote action runs at the end of an evaluation, once every variant's
windows are evaluated.

**What it does.**

1. The deployment becomes a ``single`` one: its primary variant (same name) serves the
   challenger's model at the version the challenger served; the other variants are
   dropped. The deploy's reason carries the evidence and the comparison. A protected
   deployment without approvals for that definition refuses it: nothing changes.
2. The model's ``alias`` (default ``champion``) moves to that version
   (:meth:`~opsloop.registry.ModelRegistry.set_alias`, so a protected alias's approvals
   and gate apply). A refusal here leaves the deployment promoted and the alias where it
   was; the outcome says ``refused`` with the registry's words.

Every refusal is an alert whose evidence holds the outcome (:mod:`.policy_actions`).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from opsloop.errors import DeniedError
from opsloop.monitoring.iso_time import utc_iso
from opsloop.monitoring.rollback_action import evidence_sentence
from opsloop.serving.deployment_records import Variant
from opsloop.store import tables
from opsloop.tracking.limits import MAX_TEXT_LENGTH

_evaluations = tables.monitoring_evaluations
#: Which way is better for a promote rule's operator.
HIGHER_IS_BETTER = {">": True, ">=": True, "<": False, "<=": False}


def primary_values(
    db, deployment: str, variant: str, window_ms: int, starts: list[int], rule: Any
) -> dict[int, float | None]:
    """The value of ``rule``'s signal in ``variant``'s evaluation of each window of
    ``starts``; ``None`` where the signal is undefined there (no value, or a signal judged
    on labels in a window without any, whatever it shows: :meth:`Policy.verdict
    <opsloop.monitoring.policy.Policy.verdict>`), or the window was not evaluated.

    >>> import json, sqlalchemy as sa
    >>> from opsloop.monitoring.policy import Policy
    >>> from opsloop.store.database import Database
    >>> db = Database("sqlite://")
    >>> with db.write() as connection:
    ...     _ = connection.execute(_evaluations.insert(), [
    ...         {"deployment": "api", "variant": "live", "window_ms": 10, "start_ms": start,
    ...          "metrics_json": json.dumps({"error_drift": 0, "labelled": labelled}),
    ...          "evaluated_ms": 0} for start, labelled in ((0, 0), (10, 40))])
    >>> rule = Policy.parse("error_drift < 1 for 2 windows -> promote")
    >>> primary_values(db, "api", "live", 10, [0, 10, 20], rule)
    {0: None, 10: 0.0, 20: None}
    """
    with db.read() as connection:
        rows = connection.execute(
            sa.select(_evaluations.c.start_ms, _evaluations.c.metrics_json).where(
                _evaluations.c.deployment == deployment,
                _evaluations.c.variant == variant,
                _evaluations.c.window_ms == window_ms,
                _evaluations.c.start_ms.in_(starts),
            )
        ).all()
    found = {}
    for start, metrics_json in rows:
        metrics = json.loads(metrics_json)
        # No verdict, no value to judge against: a window without labels shows 0 alarms
        # for error_drift, which is no evidence that the primary does well.
        defined = rule.verdict(metrics) is not None
        found[int(start)] = float(rule.value(metrics)) if defined else None
    return {start: found.get(start) for start in starts}


def _judged(rule, evidence, values: dict[int, float | None]) -> tuple[list[dict], str | None]:
    """The comparison window by window, and why the challenger is not better (or None)."""
    higher = HIGHER_IS_BETTER[rule.op]
    compared, problem = [], None
    for window in evidence["windows"]:
        mine, theirs = window["value"], values[window["start_ms"]]
        compared.append({"start_ms": window["start_ms"], "challenger": mine, "primary": theirs})
        if problem is not None:
            continue
        if theirs is None:
            problem = (
                f"the primary has no {rule.signal} in the window from "
                f"{utc_iso(window['start_ms'])} "
                "to judge the challenger against"
            )
        elif (mine < theirs) if higher else (mine > theirs):
            problem = (
                f"the challenger's {rule.signal} {mine:.4g} is worse than the primary's "
                f"{theirs:.4g} in the window from {utc_iso(window['start_ms'])}"
            )
    return compared, problem


def promote(context: Any, name: str, variant: str, rule: Any, evidence: dict) -> dict[str, Any]:
    """Promote ``variant`` of deployment ``name`` (see the module docstring); the outcome:
    ``status`` (``done`` or ``refused``), a ``reason``, the ``comparison`` with the primary
    window by window, and for ``done`` the definitions ``from`` and ``to``."""
    # For a server's services the token's owner acts: no actor is sent to them.
    deployments, actor = context.deployments, context.actor_argument
    current = deployments.get(name)
    primary = next(v for v in current.variants if v.role == "primary")
    challenger = next((v for v in current.variants if v.name == variant), None)
    if challenger is None:
        return {
            "status": "refused",
            "reason": f"variant {variant!r} is not in deployment {name!r} any more",
        }
    if challenger.role == "primary":
        return {
            "status": "refused",
            "reason": f"variant {variant!r} is the primary of {name!r}: nothing to promote",
        }
    starts = [int(w["start_ms"]) for w in evidence["windows"]]
    values = primary_values(
        context.db, name, primary.name, int(evidence["window_ms"]), starts, rule
    )
    compared, problem = _judged(rule, evidence, values)
    outcome: dict[str, Any] = {"comparison": compared, "variant": variant}
    if problem is not None:
        return {**outcome, "status": "refused", "reason": f"{variant!r} not promoted: {problem}"}
    version = current.serving[variant]
    alias = rule.option("alias")
    why = evidence_sentence(rule.text, evidence)
    target = f"{challenger.model} v{version}"
    reason = (
        f"monitoring promotes {variant!r} ({target}), at least as good as the primary in "
        f"every window: {why}; comparison={json.dumps(compared)}"
    )
    if len(reason) > MAX_TEXT_LENGTH:
        reason = f"monitoring promotes {variant!r} ({target}): {why}"
    try:
        deployed = deployments.deploy(
            name,
            [Variant(primary.name, challenger.model, version=version)],
            strategy="single",
            automation=current.automation,
            description=current.description,
            actor=actor,
            reason=reason,
        )
    except DeniedError as error:
        return {
            **outcome,
            "status": "refused",
            "reason": f"promotion of {variant!r} ({target}) refused: {error}",
        }
    outcome.update({"from": current.serving, "to": deployed.serving, "version": version})
    try:
        context.registry.set_alias(challenger.model, alias, version, actor=actor, reason=reason)
    except DeniedError as error:
        return {
            **outcome,
            "status": "refused",
            "reason": f"{name!r} now serves {target}, but alias {alias!r} was not moved: {error}",
        }
    outcome["alias"] = alias
    return {
        **outcome,
        "status": "done",
        "reason": f"{name!r} promoted {variant!r}: serves {target}, {alias!r} moved to it; {why}",
    }
