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
next :func:`~opsloop.monitoring.evaluation.evaluate`. An action leaves the pending list
for the actions in flight before it starts, so two evaluators never both run it; one whose
process died before its outcome was recorded gets the outcome ``interrupted`` at the next
evaluation, and a webhook is sent again with the same ``Idempotency-Key``
(:mod:`.running_actions`). A ``promote`` runs at the end of the evaluation,
when the primary's windows it is compared with are evaluated too.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opsloop.analysis.gate import GateSpec
from opsloop.errors import InvalidArgumentError, OpsloopError
from opsloop.monitoring.action_outcome import record_outcome
from opsloop.monitoring.policy import Policy
from opsloop.monitoring.promote_action import promote
from opsloop.monitoring.retrain_action import retrain
from opsloop.monitoring.retrain_queue import queue_retrain
from opsloop.monitoring.rollback_action import rollback
from opsloop.monitoring.webhook_action import post_alert
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

    ``queue_retrains`` runs no training here: a ``retrain`` becomes a request queued for a
    follower that the user trusts to run their code (:mod:`.retrain_queue`), which is what a
    server's monitoring does. ``tracking`` (default: a local tracking store on the
    registry's store) records the retraining's run. ``remote`` says the services are a
    server's, where the token's owner acts: no ``actor`` is sent to them, and ``actor``
    only names who acts in the reasons written.

    >>> ActionContext(db).acting == ActionContext(db).deployments.actor
    True
    """

    db: Database | None
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
    queue_retrains: bool = False
    tracking: Any = None
    remote: bool = False

    def __post_init__(self) -> None:
        if self.deployments is None:
            self.deployments = Deployments(self.db)
        self.trusted_types = tuple(self.trusted_types)
        self.canary_steps = tuple(self.canary_steps)

    @property
    def acting(self) -> str:
        """Who the actions act as."""
        return self.actor or self.deployments.actor

    @property
    def actor_argument(self) -> str | None:
        """The ``actor=`` the services are called with: none for a server's.

        >>> ActionContext(db, actor="ana").actor_argument, ActionContext(db, remote=True).actor_argument
        ('ana', None)
        """  # noqa: E501 - a doctest's expected output is one line
        return None if self.remote else self.acting

    def can_run(self, rule: Policy) -> bool:
        """Whether this context holds what ``rule``'s action needs.

        >>> ActionContext(db).can_run(Policy.parse("error_rate > 0.2 -> rollback"))
        True
        """
        if rule.action == "promote":
            return self.registry is not None
        if rule.action == "retrain" and self.queue_retrains:
            return True
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


def _act(
    context: ActionContext, deployment, variant, rule: Policy, evidence, action_id=None
) -> dict[str, Any]:
    if rule.action == "webhook":
        payload = {"deployment": deployment, "variant": variant, "rule": rule.text, **evidence}
        extra = {} if context.sleep is None else {"sleep": context.sleep}
        return post_alert(
            rule.option("url"),
            payload,
            timeout_s=rule.option("timeout_s"),
            retries=rule.option("retries"),
            backoff_s=context.webhook_backoff_s,
            idempotency_key=action_id,
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
    if rule.action == "retrain" and context.queue_retrains:
        return queue_retrain(context.db, deployment, variant, rule, evidence, actor=context.acting)
    if rule.action == "retrain":
        return retrain(context, deployment, variant, rule, evidence)
    if rule.action == "promote":
        return promote(context, deployment, variant, rule, evidence)
    raise InvalidArgumentError(f"action: no action named {rule.action!r}")


def attempted(act: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """What ``act()`` returns, or a ``failed`` outcome naming what it raised.

    >>> attempted(lambda: {"status": "done", "reason": "sent"})["status"]
    'done'
    >>> attempted(lambda: 1 / 0)["reason"]
    'ZeroDivisionError: division by zero'
    """
    try:
        return act()
    except (OpsloopError, ValueError, KeyError) as error:
        return {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
    except Exception as error:
        # The user's training function may raise anything; the monitor records it (with
        # where it came from) as a failed action and goes on watching.
        return {
            "status": "failed",
            "reason": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(limit=-6),
        }


def run_action(
    context: ActionContext,
    deployment: str,
    variant: str,
    rule: Policy,
    evidence: dict,
    *,
    action_id: str | None = None,
) -> dict[str, Any]:
    """Run ``rule``'s action for the alert ``evidence``; record and return its outcome
    (``action``, ``status``, ``reason`` and what the action reports). ``action_id`` names
    the action in flight it is (:mod:`.running_actions`): a webhook sends it as its
    ``Idempotency-Key``, and the outcome takes it out of the actions in flight.

    >>> context = ActionContext(db)
    >>> rule = Policy.parse("error_rate > 0.1 -> webhook(url=http://127.0.0.1:9/, retries=0)")
    >>> evidence = {"signal": "error_rate", "windows": [{"start_ms": 0, "value": 0.3}]}
    >>> run_action(context, "api", "default", rule, evidence)["status"]
    'failed'
    >>> from opsloop.monitoring.evaluation import read_alerts
    >>> read_alerts(db, "api")["evidence"][0]["failed_action"]["action"]
    'webhook'
    """
    outcome = attempted(lambda: _act(context, deployment, variant, rule, evidence, action_id))
    outcome = {"action": rule.action, "rule": rule.text, **outcome}
    if action_id is not None:
        outcome["action_id"] = action_id
    record_outcome(
        context.db,
        context.acting,
        deployment,
        variant,
        rule.text,
        evidence,
        outcome,
        action_id=action_id,
    )
    return outcome
