"""The ``rollback`` action: put a deployment back on its previous definition, or on the
version a named alias of its model points at, through the deployments service's audited
deploy.

Without ``to``, the deployments service's own rollback
(:meth:`~opsloop.serving.Deployments.rollback`) restores the definition the last change
replaced, as a failing canary's gate does: on a protected deployment it reuses the
approvals (and the passed release gate) that covered that definition when it served, so the
loop can undo a bad change without waiting for people, and a rollback is never undone by
another one. With ``to=ALIAS`` the deployment becomes a ``single`` one whose primary variant
follows ``MODEL@ALIAS``, through an audited deploy, which a protected deployment allows
only with approvals of that definition. The change's reason carries the evidence: the
policy, the windows and the signal's value in each.

A change the service refuses (approvals or a gate missing, no earlier definition, the
definition a rollback already) changes nothing: the outcome says ``refused`` with the
service's own words (the caller records an alert). One that names the definition in place
changes nothing; its outcome is ``done`` and says that nothing changed.

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

``to`` naming what serves already changes nothing, and the outcome says so:

>>> registry.set_alias("credit", "champion", 1)
>>> _ = deployments.deploy("web", [Variant("live", "credit", alias="champion")])
>>> rollback(deployments, "web", "error_rate > 0.1 -> rollback(to=champion)",
...          {"signal": "error_rate", "windows": []}, to="champion")["reason"]
"nothing changed: 'web' serves credit@champion already: ..."
"""

from __future__ import annotations

import json
from typing import Any

from opsloop.errors import ConflictError, DeniedError
from opsloop.monitoring.iso_time import utc_iso
from opsloop.serving.deployment_records import Variant
from opsloop.tracking.limits import MAX_TEXT_LENGTH


def evidence_sentence(rule: str, evidence: dict[str, Any]) -> str:
    """One line saying why: the rule, then each window's start (UTC) and the signal's value.

    >>> evidence_sentence("drift_share > 0.3 -> alert",
    ...     {"signal": "share", "windows": [{"start_ms": 3_600_000, "value": 0.5}]})
    "policy 'drift_share > 0.3 -> alert' held: share 0.5 in the window from 1970-01-01T01:00:00Z"
    >>> evidence_sentence("retrain requested by ana",
    ...     {"signal": "request", "windows": [], "change_point_ms": 0, "start_ms": 0})
    'retrain requested by ana, on the data from 1970-01-01T00:00:00Z'
    >>> evidence_sentence("concept_drift > 0 for 2 windows -> alert", {"signal": "concept_drift",
    ...     "windows": [{"start_ms": 0, "value": 1}, {"start_ms": 7_200_000, "value": 1}],
    ...     "skipped": [3_600_000]})
    "policy 'concept_drift > 0 for 2 windows -> alert' held: concept_drift 1 in the window from 1970-01-01T00:00:00Z, concept_drift 1 in the window from 1970-01-01T02:00:00Z, passing over 1 window(s) without a verdict"
    """  # noqa: E501 - a doctest's expected output is one line
    windows = evidence.get("windows", [])
    if evidence.get("signal") == "request":  # asked for by a person, not a policy
        return f"{rule}, on the data from {utc_iso(evidence['change_point_ms'])}"
    values = ", ".join(
        f"{evidence.get('signal')} {w['value']:.4g} in the window from {utc_iso(w['start_ms'])}"
        for w in windows
    )
    # The counts, where the evidence has them: the listed windows are bounded.
    if evidence.get("held_count", len(windows)) > len(windows):
        values += f" (the latest {len(windows)} of {evidence['held_count']} windows that held)"
    passed = evidence.get("skipped_count", len(evidence.get("skipped") or []))
    if passed:
        values += f", passing over {passed} window(s) without a verdict"
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
    target = "its previous definition"
    if to:
        primary = next(v for v in current.variants if v.role == "primary")
        target = f"{primary.model}@{to}"
    why = evidence_sentence(rule, evidence)
    reason = f"monitoring rollback to {target}: {why}; evidence={json.dumps(evidence)}"
    if len(reason) > MAX_TEXT_LENGTH:  # many drifted features: the alert keeps them all
        reason = f"monitoring rollback to {target}: {why}"
    try:
        if to:
            deployed = deployments.deploy(
                name,
                (Variant(primary.name, primary.model, alias=to),),
                strategy="single",
                automation=current.automation,
                description=current.description,
                actor=actor,
                reason=reason,
            )
        else:
            deployed = deployments.rollback(name, actor=actor, reason=reason)
    except (DeniedError, ConflictError) as error:
        return {"status": "refused", "reason": f"rollback of {name!r} to {target} refused: {error}"}
    if deployed.revision == current.revision:
        # ``to`` named the definition in place: the deploy changed nothing (no entry, no
        # approvals), and the outcome must not claim a rollback.
        said = f"nothing changed: {name!r} serves {target} already: {why}"
    else:
        said = f"{name!r} rolled back to {target}: {why}"
    return {
        "status": "done",
        "reason": said,
        "from": current.serving,
        "to": deployed.serving,
    }
