"""What a policy does once its alert is recorded: call a webhook, roll the deployment back,
retrain, or promote a challenger. :class:`ActionContext` holds what the actions act with;
:func:`run_action` runs one and records its outcome.

Every outcome is an audit entry (action ``policy_webhook``, ``policy_rollback``,
``policy_retrain`` or ``policy_promote``, entity ``monitor:DEPLOYMENT``) whose reason says
what happened and why.
An action that did not do its work (a webhook not delivered, a rollback refused by a
protected deployment, a retrained version that failed its gate, a canary refused) is also
an alert (action ``alert``) whose evidence is the policy's evidence plus the outcome: the
refusal in the service's words, or the gate's report.

The window's evaluation records the action as pending in the same transaction as the
alert, and the action runs after it commits; a process stopped in between runs it at its
next :func:`~opsloop.monitoring.evaluation.evaluate` (an action is never run twice: it
leaves the pending list before it starts). A ``promote`` runs at the end of the evaluation,
when the primary's windows it is compared with are evaluated too.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from typing import Any

from opsloop.analysis.gate import GateSpec
from opsloop.errors import InvalidArgumentError, OpsloopError
from opsloop.monitoring.alert_log import record_alert
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.promote_action import promote
from opsloop.monitoring.retrain_action import retrain
from opsloop.monitoring.rollback_action import evidence_sentence, rollback
from opsloop.monitoring.webhook_action import post_alert
from opsloop.registry.audit import append_audit, lock_audit_log
from opsloop.serving.deployments import Deployments
from opsloop.serving.rollout_policy import DEFAULT_STEPS
from opsloop.store.database import Database


@dataclass
class ActionContext:
    """What the actions act with.

    ``deployments`` (default ``Deployments(db)``) rolls back and starts canaries, as
    ``actor`` (default: its own actor). ``registry`` (a
    :class:`~opsloop.registry.ModelRegistry` on the same store) and ``gate`` (a
    :class:`~opsloop.analysis.gate.GateSpec`) are needed by ``retrain``; ``promote``
    needs the ``registry`` (it moves an alias), with ``trust`` and
    ``trusted_types`` for loading the versions the gate compares; the run goes to
    ``experiment``. The canary ramps through ``canary_steps``, ``canary_min_requests`` a
    step, under ``canary_gates`` (see :meth:`~opsloop.serving.Deployments.set_rollout`).
    ``webhook_backoff_s`` is the first wait between webhook tries; ``seed`` draws the
    reference's share.

    >>> ActionContext(db).acting == ActionContext(db).deployments.actor
    True
    """

    db: Database
    deployments: Any = None
    registry: Any = None
    gate: GateSpec | None = None
    actor: str | None = None
    trust: bool = False
    trusted_types: tuple[str, ...] = ()
    experiment: str = "retrain"
    canary_steps: tuple[float, ...] = DEFAULT_STEPS
    canary_min_requests: int = 100
    canary_gates: dict[str, dict[str, float]] | None = None
    webhook_backoff_s: float = 0.5
    seed: int = 0
    sleep: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.deployments is None:
            self.deployments = Deployments(self.db)
        self.trusted_types = tuple(self.trusted_types)
        self.canary_steps = tuple(self.canary_steps)

    @property
    def acting(self) -> str:
        """Who the actions act as."""
        return self.actor or self.deployments.actor

    def can_run(self, rule: Policy) -> bool:
        """Whether this context holds what ``rule``'s action needs.

        >>> ActionContext(db).can_run(Policy.parse("error_rate > 0.2 -> rollback"))
        True
        """
        if rule.action == "promote":
            return self.registry is not None
        return rule.action != "retrain" or (self.registry is not None and self.gate is not None)

    def check(self, rules: list[Policy]) -> None:
        """Refuse, before any window is evaluated, rules this context cannot act on.

        >>> ActionContext(db).check([Policy.parse("error_drift > 0 -> retrain(train=m:f)")])
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: policy 'error_drift > 0 -> retrain(train=m:f)': retrain needs ActionContext(registry=..., gate=...)
        """  # noqa: E501 - a doctest's expected output is one line
        for rule in rules:
            if not self.can_run(rule):
                needs = "registry=..." if rule.action == "promote" else "registry=..., gate=..."
                raise InvalidArgumentError(
                    f"policy {rule.text!r}: {rule.action} needs ActionContext({needs})"
                )


def _act(context: ActionContext, deployment, variant, rule: Policy, evidence) -> dict[str, Any]:
    if rule.action == "webhook":
        payload = {"deployment": deployment, "variant": variant, "rule": rule.text, **evidence}
        extra = {} if context.sleep is None else {"sleep": context.sleep}
        return post_alert(
            rule.option("url"),
            payload,
            timeout_s=rule.option("timeout_s"),
            retries=rule.option("retries"),
            backoff_s=context.webhook_backoff_s,
            **extra,
        )
    if rule.action == "rollback":
        return rollback(
            context.deployments,
            deployment,
            rule.text,
            evidence,
            to=rule.option("to"),
            actor=context.acting,
        )
    if rule.action == "retrain":
        return retrain(context, deployment, variant, rule, evidence)
    if rule.action == "promote":
        return promote(context, deployment, variant, rule, evidence)
    raise InvalidArgumentError(f"action: no action named {rule.action!r}")


def run_action(
    context: ActionContext, deployment: str, variant: str, rule: Policy, evidence: dict
) -> dict[str, Any]:
    """Run ``rule``'s action for the alert ``evidence``; record and return its outcome
    (``action``, ``status``, ``reason`` and what the action reports).

    >>> context = ActionContext(db)
    >>> rule = Policy.parse("error_rate > 0.1 -> webhook(url=http://127.0.0.1:9/, retries=0)")
    >>> evidence = {"signal": "error_rate", "windows": [{"start_ms": 0, "value": 0.3}]}
    >>> run_action(context, "api", "default", rule, evidence)["status"]
    'failed'
    >>> from opsloop.monitoring.evaluation import read_alerts
    >>> read_alerts(db, "api")["evidence"][0]["failed_action"]["action"]
    'webhook'
    """
    try:
        outcome = _act(context, deployment, variant, rule, evidence)
    except (OpsloopError, ValueError, KeyError) as error:
        outcome = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
    except Exception as error:
        # The user's training function may raise anything; the monitor records it (with
        # where it came from) as a failed action and goes on watching.
        outcome = {
            "status": "failed",
            "reason": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(limit=5),
        }
    outcome = {"action": rule.action, "rule": rule.text, **outcome}
    why = evidence_sentence(rule.text, evidence)
    with context.db.write() as connection:
        lock_audit_log(connection)
        append_audit(
            connection,
            context.acting,
            f"policy_{rule.action}",
            f"monitor:{deployment}",
            f"{outcome['status']}: {outcome['reason']} ({why})",
            None,
            json.loads(json.dumps({"variant": variant, **outcome}, default=str)),
        )
        if outcome["status"] != "done":
            record_alert(
                connection,
                deployment,
                variant,
                rule.text,
                "alert",
                {**evidence, "failed_action": outcome},
                f"{rule.action} {outcome['status']}: {outcome['reason']}",
                actor=context.acting,
            )
    return outcome
