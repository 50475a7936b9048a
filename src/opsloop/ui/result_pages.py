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
``ab_report``, ``shadow_agreement``); this module only arranges it. The rollout, the
A/B report and the shadows' agreement are also fragments of their own
(``/results/rollout``, ``/results/ab``, ``/results/shadows``) that the page refetches
in place while it is open; without JavaScript it is the same page.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from opsloop.errors import InvalidArgumentError
from opsloop.registry import User
from opsloop.serving.ab_report import OUTCOMES
from opsloop.serving.rollout_decisions import decision_of
from opsloop.store.database import now_ms
from opsloop.tracking.limits import checked_name
from opsloop.ui.deployment_pages import moment_ms
from opsloop.ui.live_pages import WINDOWS, window_ms
from opsloop.ui.page_route import PageRoute
from opsloop.ui.refresh_query import DEFAULT_REFRESH_S, Refresh, kept_refresh
from opsloop.ui.rendering import render
from opsloop.ui.rollout_state import bandit_arms, canary_gates, decision_outcome, rollout_of
from opsloop.ui.session_check import page_user

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]
#: The newest history entries the page looks through for the rollout's changes.
HISTORY_READ = 500
#: The longest window and end time the shadows' fragment reads ("15m", an ISO time).
MAX_WINDOW_LENGTH, MAX_MOMENT_LENGTH = 10, 40
#: The A/B report folds in the feedback and answers written since the last report
#: (opsloop.serving.ab_arm_sums): after 1,000 new feedback rows and answers it costs
#: 0.03-0.14 s (16-35 ms of this process's CPU) at 100,000 and at 1,000,000 rows, on
#: SQLite and on PostgreSQL, and 0.003-0.02 s with nothing new (benchmarks/ab_report.py).
#: Only a deployment's first report reads its whole history (7-11 s at 1,000,000 rows):
#: made by the page itself when it is opened, and once per server process where its sums
#: cannot be kept in the store (a lock held past 200 ms, a read-only store): the process
#: folds in from the sums it last computed. So its part of the page refreshes
#: as the rest does, though never more often than the default rate, in seconds (a refresh
#: is fetched only once the one before has come back: a slow report never piles up).
AB_REFRESH_FLOOR_S = DEFAULT_REFRESH_S
#: The kind of change each rollout decision's action makes, as the page names it.
_KINDS = {"step": "step", "complete": "complete", "rollback": "rollback"}


def rollout_changes(history: pd.DataFrame) -> list[dict[str, Any]]:
    """The rollout's audited changes, newest first: setting the rollout, and each change
    its controller made (``step``, ``complete`` or ``rollback``, a deploy or a protected
    deployment's rollback) with the candidate's share after it, the sentence of its reason
    and its evidence. A change is the controller's when its entry carries the decision
    (:mod:`opsloop.serving.rollout_decisions`), whatever its reason says.

    >>> history = pd.DataFrame([
    ...     {"id": 1, "time": 5, "actor": "ana", "action": "set_rollout", "reason": None,
    ...      "after": {"policy": {}}, "decision": None},
    ...     {"id": 2, "time": 6, "actor": "ana", "action": "deploy",
    ...      "reason": "rollout: gate 'errors' failed (...) evidence={...}",
    ...      "after": {}, "decision": {"rollout": "canary", "action": "rollback",
    ...                                "share": 0.0, "evidence": {"failed_gate": "errors"}}},
    ...     {"id": 3, "time": 7, "actor": "bo", "action": "deploy",
    ...      "reason": 'rollout: canary to 100% evidence={"step": 9}', "after": {},
    ...      "decision": None}])
    >>> [(c["kind"], c["share"], c["sentence"], c["evidence"]) for c in rollout_changes(history)]
    [('rollback', 0.0, "rollout: gate 'errors' failed (...)", {'failed_gate': 'errors'}), ('set', None, '', {})]
    """  # noqa: E501 - a doctest's expected output is one line
    changes = []
    for entry in history.to_dict("records"):
        reason = entry.get("reason")
        reason = reason if isinstance(reason, str) else ""  # a frame's None may read as NaN
        if entry["action"] == "set_rollout":
            changes.append(
                {"id": entry["id"], "time": entry["time"], "actor": entry["actor"],
                 "kind": "set", "share": None, "sentence": reason, "evidence": {}}
            )  # fmt: skip
            continue
        decision = decision_of(entry)
        if decision is None or decision.get("action") not in _KINDS:
            continue  # a change a person made, whatever its reason says
        # The reason is the controller's own: its sentence, then the evidence as JSON.
        sentence = reason.partition(" evidence=")[0]
        changes.append(
            {"id": entry["id"], "time": entry["time"], "actor": entry["actor"],
             "kind": _KINDS[decision["action"]], "share": decision.get("share"),
             "sentence": sentence, "evidence": decision.get("evidence") or {}}
        )  # fmt: skip
    return changes[::-1]


@router.get("/deployments/{name}/results")
def results_page(
    request: Request,
    user: Viewer,
    name: str,
    outcome: str = "",
    window: str = "1h",
    until: str | None = None,
    refresh: Refresh = DEFAULT_REFRESH_S,
) -> Response:
    """The deployment's canary ramp or bandit, its A/B report (by ``outcome``; the report's
    default when empty) and its shadows' agreement over ``window`` (ending at ``until``,
    default now). The rollout and the shadows are refreshed in place every ``refresh``
    seconds (0: never) from :func:`rollout_fragment` and :func:`shadows_fragment`, the A/B
    report from :func:`ab_fragment` too, but every :data:`AB_REFRESH_FLOOR_S` seconds at
    the most often."""
    _check_outcome(outcome)
    deployments = request.app.state.deployments
    deployment = deployments.get(name)
    base = f"/deployments/{quote(name, safe='')}/results"
    return render(
        request,
        "results.html.j2",
        **rollout_context(deployments, deployment),
        **ab_context(deployments, deployment, outcome),
        **shadows_context(deployments, deployment, window, until),
        outcomes=OUTCOMES,
        windows=list(WINDOWS),
        refresh=refresh or None,
        kept_refresh=kept_refresh(refresh),
        ab_refresh_floor=AB_REFRESH_FLOOR_S,
        rollout_url=f"{base}/rollout",
        ab_url=f"{base}/ab" + (f"?{urlencode({'outcome': outcome})}" if outcome else ""),
        shadows_url=f"{base}/shadows?"
        + urlencode({"window": window, **({"until": until} if until else {})}),
    )


@router.get("/deployments/{name}/results/rollout")
def rollout_fragment(request: Request, user: Viewer, name: str) -> Response:
    """The results page's rollout alone (the canary's step and gates or the bandit's arms,
    and the rollout's audited changes), for its refresh."""
    checked_name("name", name)
    deployments = request.app.state.deployments
    return render(
        request, "results_rollout.html.j2", **rollout_context(deployments, deployments.get(name))
    )


@router.get("/deployments/{name}/results/ab")
def ab_fragment(request: Request, user: Viewer, name: str, outcome: str = "") -> Response:
    """The results page's A/B report alone (by ``outcome``), for its refresh."""
    checked_name("name", name)
    _check_outcome(outcome)
    deployments = request.app.state.deployments
    return render(
        request, "results_ab.html.j2", **ab_context(deployments, deployments.get(name), outcome)
    )


@router.get("/deployments/{name}/results/shadows")
def shadows_fragment(
    request: Request,
    user: Viewer,
    name: str,
    window: Annotated[str, Query(max_length=MAX_WINDOW_LENGTH)] = "1h",
    until: Annotated[str | None, Query(max_length=MAX_MOMENT_LENGTH)] = None,
) -> Response:
    """The results page's shadow agreement alone (over ``window`` ending at ``until``,
    default now), for its refresh."""
    checked_name("name", name)
    deployments = request.app.state.deployments
    return render(
        request,
        "results_shadows.html.j2",
        **shadows_context(deployments, deployments.get(name), window, until),
    )


def shadows_context(deployments, deployment, window: str, until: str | None) -> dict[str, Any]:
    """What the results page's shadow agreement shows: each shadow's copies and agreement
    over ``window`` (one of :data:`~opsloop.ui.live_pages.WINDOWS`) ending at ``until``
    (UTC, default now).

    >>> from opsloop.registry import ModelRegistry
    >>> from opsloop.serving import Deployments, Variant
    >>> from opsloop.store import ArtifactStore, Database
    >>> db = Database("sqlite://")
    >>> _ = ModelRegistry(db, ArtifactStore("memory://shadows-doc")).register(
    ...     "m", b"onnx bytes", flavor="onnx")
    >>> deployments = Deployments(db, actor="ana")
    >>> deployment = deployments.deploy("api", [Variant("stable", "m", version=1)])
    >>> shown = shadows_context(deployments, deployment, "1h", "2026-01-01T00:00:00")
    >>> shown["shadows"].until_ms - shown["shadows"].since_ms, shown["shadows"].variants
    (3600000, [])
    """
    span = window_ms(window)
    until_ms = moment_ms(until, "until") if until else now_ms()
    return {
        "shadows": deployments.shadow_agreement(
            deployment.name, since_ms=until_ms - span, until_ms=until_ms
        ),
        "window": window,
        "until": until or "",
    }


def _check_outcome(outcome: str) -> None:
    if outcome and outcome not in OUTCOMES:
        raise InvalidArgumentError(
            f"outcome: must be one of {', '.join(OUTCOMES)}, got {outcome[:20]!r}"
        )


def rollout_context(deployments, deployment) -> dict[str, Any]:
    """What the results page's rollout shows: the rollout (a canary's gates, a bandit's
    arms) and its audited changes among the newest :data:`HISTORY_READ` changes.

    >>> from opsloop.registry import ModelRegistry
    >>> from opsloop.serving import Deployments, Variant
    >>> from opsloop.store import ArtifactStore, Database
    >>> db = Database("sqlite://")
    >>> _ = ModelRegistry(db, ArtifactStore("memory://results-doc")).register(
    ...     "m", b"onnx bytes", flavor="onnx")
    >>> deployments = Deployments(db, actor="ana")
    >>> deployment = deployments.deploy("api", [Variant("stable", "m", version=1)])
    >>> shown = rollout_context(deployments, deployment)
    >>> shown["rollout"], shown["kind"], shown["changes"]
    (None, None, [])
    """
    rollout = rollout_of(deployments, deployment.name)
    kind = None if rollout is None else rollout["state"].get("kind")
    return {
        "deployment": deployment,
        "rollout": rollout,
        "kind": kind,
        "gates": canary_gates(rollout) if rollout is not None and kind == "canary" else [],
        "decision": decision_outcome(rollout) if rollout is not None and kind == "canary" else None,
        "arms": bandit_arms(rollout) if rollout is not None and kind == "bandit" else [],
        "changes": rollout_changes(deployments.history(deployment.name, last=HISTORY_READ)),
        "history_read": HISTORY_READ,
    }


def ab_context(deployments, deployment, outcome: str) -> dict[str, Any]:
    """What the results page's A/B report shows: the report by ``outcome`` where the
    deployment has two live variants or more, or why there is none.

    >>> from opsloop.registry import ModelRegistry
    >>> from opsloop.serving import Deployments, Variant
    >>> from opsloop.store import ArtifactStore, Database
    >>> db = Database("sqlite://")
    >>> _ = ModelRegistry(db, ArtifactStore("memory://results-doc")).register(
    ...     "m", b"onnx bytes", flavor="onnx")
    >>> deployments = Deployments(db, actor="ana")
    >>> deployment = deployments.deploy("api", [Variant("stable", "m", version=1)])
    >>> ab_context(deployments, deployment, "")["report"] is None
    True
    """
    live = [v for v in deployment.variants if v.role != "shadow"]
    report, report_problem = None, None
    if len(live) >= 2:
        try:
            report = deployments.ab_report(deployment.name, outcome=outcome or None)
        except InvalidArgumentError as error:  # e.g. labels that are not numbers
            report_problem = str(error)
    return {
        "report": report,
        "report_problem": report_problem,
        "confidence": None if report is None else _confidence(report),
        "outcome": outcome,
    }


def _confidence(report: Any) -> float | None:
    """The confidence of the report's intervals (one alpha for all its comparisons)."""
    return next((result.confidence for result in report.comparisons.values()), None)
