"""Deployment pages: the list, and one deployment's definition, history and what it served
at a chosen time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated
from urllib.parse import quote

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from opsloop.errors import InvalidArgumentError
from opsloop.registry import User
from opsloop.registry.protection_approvals import LapsedProtectionApproval, described
from opsloop.ui.form_posts import FormProblem
from opsloop.ui.page_route import PageRoute
from opsloop.ui.refresh_query import DEFAULT_REFRESH_S, Refresh, kept_refresh
from opsloop.ui.rendering import render, signed_in_name
from opsloop.ui.rollout_state import bandit_arms, canary_gates, decision_outcome, rollout_of
from opsloop.ui.row_pages import EntryId, PageNumber, log_page, row_page
from opsloop.ui.session_check import page_user

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]
#: The history entries a deployment page shows at a time, newest first.
HISTORY_SHOWN = 100
#: The newest approvals recorded since the last deploy that a deployment page lists.
PENDING_SHOWN = 100


def moment_ms(text: str, field: str = "at") -> int:
    """An ISO time (UTC unless it names a zone; the form's ``YYYY-MM-DDTHH:MM`` too) in
    milliseconds since the epoch.

    >>> moment_ms("1970-01-01T00:00:01")
    1000
    >>> moment_ms("yesterday")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: at: needs an ISO time such as 2026-05-01T12:00, got...
    >>> moment_ms("soon", "until")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: until: needs an ISO time such as 2026-05-01T12:00, got...
    >>> moment_ms("9999-12-31T23:59:59", "until")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: until: must lie between the years 1678 and 2261, got...
    """
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, OverflowError):
        stamp = None
    if stamp is None or pd.isna(stamp):
        raise InvalidArgumentError(
            f"{field}: needs an ISO time such as 2026-05-01T12:00, got {text[:40]!r}"
        )
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    try:
        nanoseconds = stamp.value
    except OverflowError:  # parsed, but outside what nanoseconds since 1970 can hold
        raise InvalidArgumentError(
            f"{field}: must lie between the years 1678 and 2261, got {text[:40]!r}"
        ) from None
    return int(nanoseconds // 1_000_000)


def traffic(deployment) -> list[dict]:
    """The variants with the share of traffic each weight gives (of the weights in all).

    >>> from opsloop.serving import Deployment, Variant
    >>> d = Deployment("api", "canary", "full_automation",
    ...                (Variant("a", "m", version=1, weight=3.0),
    ...                 Variant("b", "m", version=2, role="candidate", weight=1.0)),
    ...                None, 0, "ana", {"a": 1, "b": 2})
    >>> [(row["variant"], row["share"]) for row in traffic(d)]
    [('a', 0.75), ('b', 0.25)]
    """
    total = sum(v.weight for v in deployment.variants)
    return [
        {
            "variant": v.name,
            "model": v.model,
            "ref": v.ref,
            "role": v.role,
            "weight": v.weight,
            "share": v.weight / total if total else 0.0,
            "serving": deployment.serving.get(v.name),
        }
        for v in deployment.variants
    ]


@router.get("/deployments")
def deployments_page(request: Request, user: Viewer, page: PageNumber = 1) -> Response:
    """The deployments, 50 a page: strategy, automation level, variants."""
    deployments = request.app.state.deployments
    listing = row_page(lambda limit, offset: deployments.list(limit=limit, offset=offset), page)
    return render(request, "deployments.html.j2", listing=listing)


@router.get("/deployments/{name}")
def deployment_page(
    request: Request,
    user: Viewer,
    name: str,
    at: str | None = None,
    done: str | None = None,
    history_before: EntryId = None,
    refresh: Refresh = DEFAULT_REFRESH_S,
) -> Response:
    """A deployment's definition and traffic split, its history (100 changes at a time,
    ``history_before``: those older than that entry), its variants' lineage, and (with
    ``at``) what it served at that time; for editors and approvers, the forms that change
    it (see :mod:`.deployment_actions`). The traffic split, the rollout's step and gates
    and the newest change are refreshed in place every ``refresh`` seconds (0: never) from
    :func:`status_fragment`; a ``refresh`` other than the default is kept by the page's
    forms and links to its other live pages, and by the page a form's post leads back to
    (:mod:`.refresh_query`)."""
    return deployment_view(
        request,
        name,
        at=at,
        notice=DONE.get(done or ""),
        history_before=history_before,
        refresh=refresh,
        kept=kept_refresh(refresh),
    )


@router.get("/deployments/{name}/status")
def status_fragment(request: Request, user: Viewer, name: str) -> Response:
    """The deployment page's live status alone (traffic split, rollout, newest change)."""
    deployments = request.app.state.deployments
    return render(
        request, "deployment_status.html.j2", **status_context(deployments, deployments.get(name))
    )


def status_context(deployments, deployment, newest: list[dict] | None = None) -> dict:
    """What the live status shows: the variants' traffic, the rollout (a canary's step and
    gates, a bandit's arms) and the newest change of the history (read unless ``newest``,
    the history's newest entries, is given)."""
    rollout = rollout_of(deployments, deployment.name)
    kind = None if rollout is None else rollout["state"].get("kind")
    if newest is None:
        newest = deployments.history(deployment.name, last=1).to_dict("records")
    return {
        "deployment": deployment,
        "variants": traffic(deployment),
        "rollout": rollout,
        "kind": kind,
        "gates": canary_gates(rollout) if rollout is not None and kind == "canary" else [],
        "decision": decision_outcome(rollout) if rollout is not None and kind == "canary" else None,
        "arms": bandit_arms(rollout) if rollout is not None and kind == "bandit" else [],
        "newest_change": newest[0] if newest else None,
    }


#: What a change made from the deployment page says once done (``?done=``).
DONE = {
    "deployed": "The new definition is deployed; the history below shows the change.",
    "switched": "The blue/green switch is made: the standby variant takes all the traffic; "
    "the history below shows the change.",
    "promoted": "The challenger is promoted: it alone serves all the traffic now; the "
    "history below shows the change.",
    "unchanged": "Nothing changed: the deployment serves that definition already, so no "
    "approval was needed or used and the history has no new entry.",
    "approved": "Your approval is recorded; the definition can be deployed once it has all "
    "its approvals (yours does not count toward a deploy you make yourself).",
}


def definition_summary(document: dict) -> str:
    """A recorded definition in one line: strategy, then each variant, role and weight.

    >>> definition_summary({"strategy": "canary", "variants": [
    ...     {"name": "a", "model": "m", "version": None, "alias": "champion",
    ...      "role": "primary", "weight": 0.9},
    ...     {"name": "b", "model": "m", "version": 2, "alias": None,
    ...      "role": "candidate", "weight": 0.1}]})
    'canary: a=m@champion (primary, 0.9), b=m/2 (candidate, 0.1)'
    """
    parts = []
    for v in document["variants"]:
        ref = f"{v['model']}@{v['alias']}" if v.get("alias") else f"{v['model']}/{v['version']}"
        parts.append(f"{v['name']}={ref} ({v['role']}, {v['weight']:g})")
    return f"{document['strategy']}: {', '.join(parts)}"


def definition_changes(
    deploys: pd.DataFrame,
    approvals: pd.DataFrame,
    viewer: str | None = None,
    lapsed: Mapping[str, str] | None = None,
) -> tuple[dict | None, list[dict]]:
    """From a deployment's last two deploys and its newest approvals (history entries,
    oldest first): the deploy entry a rollback returns to (the one before the newest, or
    ``None``) and the approvals recorded since the newest deploy (pending: the deploy that
    uses them has not happened), each with how many distinct people approved its
    definition so far, ``viewer`` (the signed-in user) left out: the count that would hold
    if they deployed it, since an applier's own approval never counts (``own``: they
    approved it). ``lapsed`` maps the approvers whose approvals no longer count to why
    (the service's ``lapsed_approvals``): they are not counted,
    and their row says why (``lapsed``).

    >>> none = pd.DataFrame({"id": [], "time": [], "after": []})
    >>> approvals = pd.DataFrame({"id": [1, 2], "time": [0, 0], "actor": ["ana", "bo"],
    ...     "reason": [None, None], "after": [{"digest": "d", "strategy": "single",
    ...     "variants": [{"name": "s", "model": "m", "version": 1, "role": "primary",
    ...     "weight": 1.0}]}] * 2})
    >>> [(p["actor"], p["approvals"], p["own"]) for p in definition_changes(
    ...     none, approvals, "ana")[1]]
    [('bo', 1, True), ('ana', 1, True)]
    >>> [(p["approvals"], p["lapsed"]) for p in definition_changes(
    ...     none, approvals, None, {"bo": "user bo is disabled"})[1]]
    [(1, 'user bo is disabled'), (1, None)]
    """
    lapsed = lapsed or {}
    latest = int(deploys["id"].iloc[-1]) if len(deploys) else 0
    previous = None
    if len(deploys) > 1:
        row = deploys.iloc[-2]
        previous = {
            "id": int(row["id"]),
            "time": row["time"],
            "summary": definition_summary(row["after"]),
        }
    approvals = approvals[approvals["id"] > latest]
    approvers: dict[str, set] = {}
    everyone: dict[str, set] = {}
    for row in approvals.itertuples():
        everyone.setdefault(row.after["digest"], set()).add(row.actor)
        counted = approvers.setdefault(row.after["digest"], set())
        if row.actor not in lapsed:
            counted.add(row.actor)
    pending = [
        {
            "id": int(row.id),
            "time": row.time,
            "actor": row.actor,
            "comment": row.reason,
            "summary": definition_summary(row.after),
            "approvals": len(approvers[row.after["digest"]] - {viewer}),
            "own": viewer in everyone[row.after["digest"]],
            "lapsed": lapsed.get(row.actor),
        }
        for row in approvals.iloc[::-1].itertuples()
    ]
    return previous, pending


def lapsed_protection_rows(approvals: Sequence[LapsedProtectionApproval]) -> list[dict]:
    """The deployment page's rows of pending approvals of lowering its protection that no
    longer count: each with the protection it approves in words (``to``).

    >>> from opsloop.registry.protection_approvals import LapsedProtectionApproval
    >>> [row["to"] for row in lapsed_protection_rows([
    ...     LapsedProtectionApproval("bo", "user bo is disabled", 0, False, 5, None),
    ...     LapsedProtectionApproval("cy", "gone", None, None, 6, None)])]
    ['no protection', 'not recorded']
    """
    return [
        {
            "approver": a.approver,
            "why": a.why,
            "created_ms": a.created_ms,
            "comment": a.comment,
            "to": "not recorded"
            if a.required_approvals is None or a.require_gate is None
            else described((a.required_approvals, a.require_gate)),
        }
        for a in approvals
    ]


def deployment_view(
    request: Request,
    name: str,
    *,
    at: str | None = None,
    problem: FormProblem | None = None,
    notice: str | None = None,
    history_before: int | None = None,
    refresh: int = 0,
    kept: int | None = None,
) -> Response:
    """The deployment page, with a form's ``problem`` shown beside it (and its status); its
    forms and links keep the refresh ``kept`` (:mod:`.refresh_query`)."""
    deployments = request.app.state.deployments
    deployment = deployments.get(name)
    at_ms = moment_ms(at) if at else None
    then = None if at_ms is None else deployments.at(name, at_ms)
    history, older = log_page(
        lambda last, before: deployments.history(name, last=last, before=before),
        history_before,
        HISTORY_SHOWN,
    )
    lapsed = deployments.lapsed_approvals(name)
    previous, pending = definition_changes(
        deployments.history(name, action="deploy", last=2),
        deployments.history(name, action="approve", last=PENDING_SHOWN),
        signed_in_name(request),
        lapsed.definitions,
    )
    return render(
        request,
        "deployment.html.j2",
        status=200 if problem is None else problem.status,
        **status_context(deployments, deployment, None if history_before else history),
        refresh=refresh or None,
        kept_refresh=kept,
        status_url=f"/deployments/{quote(name, safe='')}/status",
        lineage=deployments.lineage(name),
        history=history,
        history_before=history_before,
        history_older=older,
        history_shown=HISTORY_SHOWN,
        # The form's datetime-local field takes only YYYY-MM-DDTHH:MM:SS.
        at="" if at_ms is None else pd.Timestamp(at_ms, unit="ms").strftime("%Y-%m-%dT%H:%M:%S"),
        at_ms=at_ms,
        then=then,
        then_variants=None if then is None else traffic(then),
        previous=previous,
        pending=pending,
        lapsed_protection=lapsed_protection_rows(lapsed.protection),
        problem=problem,
        notice=notice,
    )
