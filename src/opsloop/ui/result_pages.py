"""A deployment's results page: how its rollout went and what its arms earned.

* the canary ramp: the policy's steps and gates, the step and share now, each gate's
  statistic against its threshold with the counts behind it, and the audited changes the
  ramp made (each step, the completion or the rollback, with its evidence);
* a bandit's arms: rewards so far, the posterior where the policy has one, and the share
  of traffic each arm gets now;
* the A/B report: per live arm the requests, outcomes and their mean, and against the
  primary the difference with its interval and p-value (the CLI's ``ab-report``);
* the shadows: copies sent, answered, failed and unanswered, and agreement with the
  primary over a window.

Everything is read through the deployments service (``rollout``, ``history``,
``ab_report``, ``shadow_agreement``); this module only arranges it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from opsloop.errors import InvalidArgumentError
from opsloop.registry import User
from opsloop.serving.ab_report import OUTCOMES
from opsloop.store.database import now_ms
from opsloop.ui.deployment_pages import moment_ms
from opsloop.ui.live_pages import WINDOWS, window_ms
from opsloop.ui.page_route import PageRoute
from opsloop.ui.rendering import render
from opsloop.ui.rollout_state import bandit_arms, canary_gates, rollout_of
from opsloop.ui.session_check import page_user

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]
#: The prefix of the audit reason of every change a rollout makes.
ROLLOUT_REASON = "rollout: "
#: The newest history entries the page looks through for the rollout's changes.
HISTORY_READ = 500


def rollout_changes(history: pd.DataFrame) -> list[dict[str, Any]]:
    """The rollout's audited changes, newest first: setting the rollout, and each deploy it
    made (``step``, ``complete`` or ``rollback``) with the candidate's share after it, the
    sentence of its reason and its evidence.

    >>> history = pd.DataFrame([
    ...     {"id": 1, "time": 5, "actor": "ana", "action": "set_rollout", "reason": None,
    ...      "after": {"policy": {}}},
    ...     {"id": 2, "time": 6, "actor": "ana", "action": "deploy",
    ...      "reason": 'rollout: gate \\'errors\\' failed (...) evidence={"failed_gate": "errors"}',
    ...      "after": {"variants": [{"role": "primary", "weight": 1.0},
    ...                             {"role": "candidate", "weight": 0.0}]}}])
    >>> [(c["kind"], c["share"], c["evidence"]) for c in rollout_changes(history)]
    [('rollback', 0.0, {'failed_gate': 'errors'}), ('set', None, {})]
    """
    changes = []
    for row in history.itertuples():
        reason = row.reason or ""
        if row.action == "set_rollout":
            changes.append(
                {"id": row.id, "time": row.time, "actor": row.actor, "kind": "set",
                 "share": None, "sentence": reason, "evidence": {}}
            )  # fmt: skip
        elif row.action == "deploy" and reason.startswith(ROLLOUT_REASON):
            sentence, _, evidence_text = reason.partition(" evidence=")
            evidence = _evidence(evidence_text)
            if evidence is None:
                # A person's reason can start like the rollout's; it is not a rollout step.
                continue
            share = next(
                (v["weight"] for v in row.after["variants"] if v["role"] == "candidate"), None
            )
            if "failed_gate" in evidence:
                kind = "rollback"
            else:
                kind = "complete" if share is not None and share >= 1.0 else "step"
            changes.append(
                {"id": row.id, "time": row.time, "actor": row.actor, "kind": kind,
                 "share": share, "sentence": sentence, "evidence": evidence}
            )  # fmt: skip
    return changes[::-1]


def _evidence(text: str) -> dict | None:
    """The JSON object after a rollout reason's ``evidence=``; ``{}`` when there is none,
    ``None`` when the text is not a JSON object (a reason anyone could have typed)."""
    if not text:
        return {}
    try:
        evidence = json.loads(text)
    except ValueError:
        return None
    return evidence if isinstance(evidence, dict) else None


@router.get("/deployments/{name}/results")
def results_page(
    request: Request,
    user: Viewer,
    name: str,
    outcome: str = "",
    window: str = "1h",
    until: str | None = None,
) -> Response:
    """The deployment's canary ramp or bandit, its A/B report (by ``outcome``; the report's
    default when empty) and its shadows' agreement over ``window`` (ending at ``until``,
    default now)."""
    if outcome and outcome not in OUTCOMES:
        raise InvalidArgumentError(
            f"outcome: must be one of {', '.join(OUTCOMES)}, got {outcome[:20]!r}"
        )
    span = window_ms(window)
    deployments = request.app.state.deployments
    deployment = deployments.get(name)
    rollout = rollout_of(deployments, name)
    kind = None if rollout is None else rollout["state"].get("kind")
    live = [v for v in deployment.variants if v.role != "shadow"]
    report, report_problem = None, None
    if len(live) >= 2:
        try:
            report = deployments.ab_report(name, outcome=outcome or None)
        except InvalidArgumentError as error:  # e.g. labels that are not numbers
            report_problem = str(error)
    until_ms = moment_ms(until, "until") if until else now_ms()
    shadows = deployments.shadow_agreement(name, since_ms=until_ms - span, until_ms=until_ms)
    return render(
        request,
        "results.html.j2",
        deployment=deployment,
        rollout=rollout,
        kind=kind,
        gates=canary_gates(rollout) if kind == "canary" else [],
        arms=bandit_arms(rollout) if kind == "bandit" else [],
        changes=rollout_changes(deployments.history(name, last=HISTORY_READ)),
        history_read=HISTORY_READ,
        report=report,
        report_problem=report_problem,
        confidence=None if report is None else _confidence(report),
        outcome=outcome,
        outcomes=OUTCOMES,
        shadows=shadows,
        window=window,
        windows=list(WINDOWS),
        until=until or "",
    )


def _confidence(report: Any) -> float | None:
    """The confidence of the report's intervals (one alpha for all its comparisons)."""
    return next((result.confidence for result in report.comparisons.values()), None)
