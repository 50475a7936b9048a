"""The ``rollback`` action: put a deployment back on its previous definition, or on the
version a named alias of its model points at, through the deployments service's audited
deploy.

The previous definition is the ``before`` of the deployment's latest ``deploy`` entry in
its audit log (so a rollback after a rollback goes forward again: it undoes the last
change, whatever it was). With ``to=ALIAS`` the deployment becomes a ``single`` one whose
primary variant follows ``MODEL@ALIAS``. The deploy's reason carries the evidence: the
policy, the windows and the signal's value in each.

A protected deployment changes only with its approvals; without them the deploy is
denied, nothing changes, and the outcome says ``refused`` with the service's own words
(the caller records an alert). A deployment with no earlier definition is refused too.

>>> from opsloop.serving import Deployments, Variant
>>> for _ in range(2):
...     _ = registry.register("credit", b"x", flavor="onnx")
>>> deployments = Deployments(db)
>>> _ = deployments.deploy("api", [Variant("live", "credit", version=1)])
>>> _ = deployments.deploy("api", [Variant("live", "credit", version=2)])
>>> outcome = rollback(deployments, "api", "error_rate > 0.1 -> rollback",
...                    {"signal": "error_rate", "windows": [{"start_ms": 0, "value": 0.4}]})
>>> outcome["status"], deployments.get("api").serving
('done', {'live': 1})
"""

from __future__ import annotations

import json
from typing import Any

from opsloop.errors import DeniedError
from opsloop.serving.deployment_records import Variant
from opsloop.tracking.limits import MAX_TEXT_LENGTH


def evidence_sentence(rule: str, evidence: dict[str, Any]) -> str:
    """One line saying why: the rule, then each window's start and the signal's value.

    >>> evidence_sentence("drift_share > 0.3 -> alert",
    ...     {"signal": "drift_share", "windows": [{"start_ms": 0, "value": 0.5}]})
    "policy 'drift_share > 0.3 -> alert' held: drift_share 0.5 in the window from 0 ms"
    >>> evidence_sentence("retrain requested by ana",
    ...     {"signal": "request", "windows": [], "change_point_ms": 0, "start_ms": 0})
    'retrain requested by ana, on the data from 0 ms'
    """
    windows = evidence.get("windows", [])
    if evidence.get("signal") == "request":  # asked for by a person, not a policy
        return f"{rule}, on the data from {evidence.get('change_point_ms')} ms"
    values = ", ".join(
        f"{evidence.get('signal')} {w['value']:.4g} in the window from {w['start_ms']} ms"
        for w in windows
    )
    return f"policy {rule!r} held: {values}"


def rollback(
    deployments: Any,
    name: str,
    rule: str,
    evidence: dict[str, Any],
    *,
    to: str = "",
    actor: str | None = None,
) -> dict[str, Any]:
    """Roll ``name`` back (see the module docstring); the outcome: ``status`` (``done`` or
    ``refused``), a ``reason``, and for ``done`` the definitions ``from`` and ``to``."""
    current = deployments.get(name)
    if to:
        primary = next(v for v in current.variants if v.role == "primary")
        variants = (Variant(primary.name, primary.model, alias=to),)
        strategy, automation = "single", current.automation
        target = f"{primary.model}@{to}"
    else:
        history = deployments.history(name)
        deploys = history[history["action"] == "deploy"]
        before = deploys["before"].iloc[-1] if len(deploys) else None
        if not before:
            return {
                "status": "refused",
                "reason": f"deployment {name!r} has no earlier definition to roll back to",
            }
        variants = tuple(Variant.from_dict(v) for v in before["variants"])
        strategy, automation = before["strategy"], before["automation"]
        target = "its previous definition"
    why = evidence_sentence(rule, evidence)
    reason = f"monitoring rollback to {target}: {why}; evidence={json.dumps(evidence)}"
    if len(reason) > MAX_TEXT_LENGTH:  # many drifted features: the alert keeps them all
        reason = f"monitoring rollback to {target}: {why}"
    try:
        deployed = deployments.deploy(
            name,
            variants,
            strategy=strategy,
            automation=automation,
            description=current.description,
            actor=actor,
            reason=reason,
        )
    except DeniedError as error:
        return {"status": "refused", "reason": f"rollback of {name!r} to {target} refused: {error}"}
    return {
        "status": "done",
        "reason": f"{name!r} rolled back to {target}: {why}",
        "from": current.serving,
        "to": deployed.serving,
    }
