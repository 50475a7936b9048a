"""A deployment's monitoring policy, stored once and applied by every evaluator: its rules
and the detector its error stream is read by.

The rules (:mod:`.policy`'s grammar, ``when <signal> <op> <number> [for N windows] then
<action>``) are checked with the policy parser when they are set: a rule that does not
parse is refused naming its position (``rules.N``) and what is wrong with it, and nothing
is stored. So are a repeated rule (a rule's streak is kept by its text, so two copies
would share one and fire twice) and more than :data:`MAX_RULES` of them. The error-stream
detector is one of :data:`~.error_stream.ERROR_DETECTORS` (ADWIN by default; see
:mod:`.error_stream` for each one's calibration, and why DDM runs on River's defaults
with a ``warning``).

Every evaluation of the deployment applies them (:func:`~.evaluation.evaluate`, the
command line's ``opsloop monitor evaluate``, once or ``--follow``, locally or with
``--server``, and the server's evaluate operation), read again for each window under the
lock its evaluation holds (rules and detector of one revision, which the window records),
unless the call gives its own rules: rules given to a call win over the stored ones, for that call
(an empty list applies none). The detector is the stored one in every case. A change of
detector starts the chosen detector afresh at the next evaluated window
(:mod:`.error_stream`). An action is taken as the evaluator can take it: a stored
``retrain`` rule needs an evaluator that can retrain or queue the retraining (the command
line and the server queue it for ``opsloop monitor retrain --follow``; a bare
:func:`~.evaluation.evaluate` with a default :class:`~.policy_actions.ActionContext` has
neither and refuses the rule, naming what it needs).

Each change replaces the policy as one audited change of the deployment's monitor (entity
``monitor:NAME``, action ``set_policy``, the rules and the detector before and after),
versioned (``revision`` counts the changes). An editor may set it; a protected deployment
needs an admin, as for its other settings. A retired deployment's policy moves with its
other monitoring records to its history (``NAME/retired-N``,
:mod:`.retired_monitoring`), so a deployment created again under the name starts with
none; a policy set under the name after the retire (a deployment may be monitored before,
or without, being served here: :func:`~.event_log.log_predictions`) is the name's next
deployment's. A name holding ``/`` is refused: ``NAME/retired-N`` is a retired
deployment's history, which only a retire writes.

>>> from opsloop.store import Database
>>> db = Database("sqlite://")
>>> set_policy(db, "api", ["drift_share > 0.3 for 2 windows -> alert"],
...            error_detector="CUSUM", actor="ana").revision
1
>>> read_policy(db, "api").error_detector
'CUSUM'
>>> set_policy(db, "api", ["error_rate > 0.1 -> alert", "drift_share > 2 then"], actor="ana")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: rules.1: policy 'drift_share > 2 then': expected an action name after 'then', found the end of the rule; a rule reads '<signal> <op> <number> [for N windows] -> <action>[(key=value, ...)]' or 'when <signal> <op> <number> [for N windows] then <action>[(...)]'
>>> read_policy(db, "api").rules
('drift_share > 0.3 for 2 windows -> alert',)
"""  # noqa: E501 - a doctest's expected output is one line

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from opsloop.errors import InvalidArgumentError
from opsloop.monitoring.error_stream import (
    DEFAULT_ERROR_DETECTOR,
    check_error_detector,
    detector_warning,
)
from opsloop.monitoring.monitor_state import lock_monitor
from opsloop.monitoring.policy import MAX_RULE_LENGTH, Policy
from opsloop.registry.audit import append_audit
from opsloop.registry.users import acting_user
from opsloop.serving.deployment_approvals import required_approvals
from opsloop.store import tables
from opsloop.store.database import Database

_policies = tables.monitoring_policies

#: The most rules a deployment's policy holds (the longest rule is
#: :data:`.policy.MAX_RULE_LENGTH` characters).
MAX_RULES = 100


@dataclass(frozen=True)
class PolicySetting:
    """Deployment ``deployment``'s stored ``rules`` and ``error_detector``, at ``revision``
    (0: never set), last set at ``updated_ms`` by ``updated_by``; ``warning`` says what the
    detector's choice costs (``None`` for a calibrated one).

    >>> PolicySetting("api").to_dict()["error_detector"]
    'ADWIN'
    """

    deployment: str
    rules: tuple[str, ...] = ()
    error_detector: str = DEFAULT_ERROR_DETECTOR
    revision: int = 0
    updated_ms: int | None = None
    updated_by: str | None = None
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The setting as a JSON-safe dictionary."""
        return {
            "deployment": self.deployment,
            "rules": list(self.rules),
            "error_detector": self.error_detector,
            "revision": self.revision,
            "updated_ms": self.updated_ms,
            "updated_by": self.updated_by,
            "warning": self.warning,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> PolicySetting:
        """The setting :meth:`to_dict` wrote.

        >>> s = PolicySetting("api", ("error_drift > 0 -> alert",), "DDM", 2, 5, "ana")
        >>> PolicySetting.from_dict(s.to_dict()) == s
        True
        """
        return cls(
            deployment=document["deployment"],
            rules=tuple(document.get("rules") or ()),
            error_detector=document.get("error_detector", DEFAULT_ERROR_DETECTOR),
            revision=int(document.get("revision", 0)),
            updated_ms=document.get("updated_ms"),
            updated_by=document.get("updated_by"),
            warning=document.get("warning"),
        )

    def summary(self) -> dict[str, Any]:
        """What the audit log keeps of it: the rules, the detector and the revision.

        >>> PolicySetting("api").summary()
        {'rules': [], 'error_detector': 'ADWIN', 'revision': 0}
        """
        return {
            "rules": list(self.rules),
            "error_detector": self.error_detector,
            "revision": self.revision,
        }


def checked_rules(rules: object) -> tuple[str, ...]:
    """``rules`` as stored (each parsed by :meth:`.Policy.parse`), or an
    :class:`~opsloop.errors.InvalidArgumentError` naming the rule's position and what is
    wrong with it.

    >>> checked_rules(["error_drift > 0 -> alert", "error_drift > 0 -> alert"])
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: rules.1: the same rule as rules.0 (a rule's streak is kept by its text); give it once
    >>> checked_rules("error_drift > 0 -> alert")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: rules: a list of rules, got one text; put it in a list
    """  # noqa: E501 - a doctest's expected output is one line
    if isinstance(rules, str):
        raise InvalidArgumentError("rules: a list of rules, got one text; put it in a list")
    if not isinstance(rules, Sequence):
        raise InvalidArgumentError(f"rules: a list of rules, got {type(rules).__name__}")
    if len(rules) > MAX_RULES:
        raise InvalidArgumentError(f"rules: at most {MAX_RULES} rules, got {len(rules)}")
    seen: dict[str, int] = {}
    for position, rule in enumerate(rules):
        where = f"rules.{position}"
        if not isinstance(rule, str):
            raise InvalidArgumentError(f"{where}: a rule as text, got {type(rule).__name__}")
        if len(rule) > MAX_RULE_LENGTH:
            raise InvalidArgumentError(
                f"{where}: at most {MAX_RULE_LENGTH} characters, got {len(rule)}"
            )
        if "\x00" in rule:
            raise InvalidArgumentError(f"{where}: a NUL character at {rule.index(chr(0))}")
        try:
            Policy.parse(rule)
        except InvalidArgumentError as error:
            raise InvalidArgumentError(f"{where}: {error}") from None
        if rule in seen:
            raise InvalidArgumentError(
                f"{where}: the same rule as rules.{seen[rule]} (a rule's streak is kept by "
                "its text); give it once"
            )
        seen[rule] = position
    return tuple(rules)


def policy_in(connection: Connection, deployment: str) -> PolicySetting:
    """The stored policy of ``deployment`` read on ``connection`` (none: no rules, ADWIN).

    >>> with Database("sqlite://").read() as c:
    ...     policy_in(c, "api").rules, policy_in(c, "api").error_detector
    ((), 'ADWIN')
    """
    row = (
        connection.execute(sa.select(_policies).where(_policies.c.deployment == deployment))
        .mappings()
        .first()
    )
    if row is None:
        return PolicySetting(deployment)
    return PolicySetting(
        deployment=deployment,
        rules=tuple(json.loads(row["rules_json"])),
        error_detector=row["error_detector"],
        revision=row["revision"],
        updated_ms=row["updated_ms"],
        updated_by=row["updated_by"],
        warning=detector_warning(row["error_detector"]),
    )


def read_policy(db: Database, deployment: str) -> PolicySetting:
    """The stored policy of ``deployment`` now (no rules and ADWIN when never set).

    >>> read_policy(Database("sqlite://"), "api").revision
    0
    """
    with db.read() as connection:
        return policy_in(connection, deployment)


def set_policy(
    db: Database,
    deployment: str,
    rules: Sequence[str],
    *,
    error_detector: str | None = None,
    actor: str,
    reason: str | None = None,
) -> PolicySetting:
    """Replace ``deployment``'s stored policy (its ``rules``, ``[]`` for none, and its
    ``error_detector``; ``None`` keeps the stored one, ADWIN when none is) as one audited
    change (see the module docstring); the policy as stored, with the detector's
    ``warning``."""
    if "/" in deployment:
        raise InvalidArgumentError(
            f"deployment {deployment!r}: a name may not contain '/' (a retired deployment's "
            "history is written by its retire only)"
        )
    checked = checked_rules(rules)
    chosen = None if error_detector is None else check_error_detector(error_detector)
    with db.write() as connection:
        # The monitor's lock first, the order an evaluation and a retire take them in.
        lock_monitor(connection, deployment)
        role = "admin" if required_approvals(connection, deployment) else "editor"
        who = acting_user(connection, actor, role)
        before = policy_in(connection, deployment)
        # Read under the lock: a change of the rules alone keeps the detector and its state.
        detector = before.error_detector if chosen is None else chosen
        at = db.clock()
        after = PolicySetting(
            deployment, checked, detector, before.revision + 1, at, who, detector_warning(detector)
        )
        values = {
            "revision": after.revision,
            "rules_json": json.dumps(list(checked)),
            "error_detector": detector,
            "updated_ms": at,
            "updated_by": who,
        }
        if before.revision == 0:
            connection.execute(_policies.insert().values(deployment=deployment, **values))
        else:
            connection.execute(
                _policies.update().where(_policies.c.deployment == deployment).values(**values)
            )
        append_audit(
            connection,
            who,
            "set_policy",
            f"monitor:{deployment}",
            reason,
            None if before.revision == 0 else before.summary(),
            after.summary(),
            at_ms=at,
        )
    return after


__all__ = [
    "MAX_RULES",
    "PolicySetting",
    "checked_rules",
    "policy_in",
    "read_policy",
    "set_policy",
]
