"""Model pages: registered models, a model's versions and audit log, one version's lineage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from opsloop.errors import NotFoundError
from opsloop.registry import User
from opsloop.ui.form_posts import FormProblem
from opsloop.ui.gate_verdicts import version_gate_verdicts
from opsloop.ui.page_route import PageRoute
from opsloop.ui.rendering import render, signed_in_name
from opsloop.ui.row_pages import EntryId, PageNumber, log_page, row_page
from opsloop.ui.session_check import page_user

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]
#: The audit entries a model page shows at a time, newest first.
AUDIT_SHOWN = 100


def model_record(registry, name: str) -> dict:
    """Model ``name``'s row of the registry's listing (description, latest version,
    aliases); a 404 naming it when there is none."""
    found = registry.list_models(name)
    if found.empty:
        raise NotFoundError(f"unknown model {name!r}")
    return found.iloc[0].to_dict()


@router.get("/models")
def models_page(request: Request, user: Viewer, page: PageNumber = 1) -> Response:
    """Registered models with their latest version and aliases, 50 a page."""
    registry = request.app.state.registry
    listing = row_page(lambda limit, offset: registry.list_models(limit=limit, offset=offset), page)
    return render(request, "models.html.j2", listing=listing)


@router.get("/models/{name}")
def model_page(
    request: Request,
    user: Viewer,
    name: str,
    page: PageNumber = 1,
    audit_before: EntryId = None,
) -> Response:
    """A model's versions (metrics, aliases, source run), 50 a page, and its audit log,
    100 entries at a time (``audit_before``: those older than that entry)."""
    registry = request.app.state.registry
    model = model_record(registry, name)
    listing = row_page(
        lambda limit, offset: registry.search(model=name, limit=limit, offset=offset), page
    )
    audit, older = log_page(
        lambda last, before: registry.audit(name, last=last, before=before),
        audit_before,
        AUDIT_SHOWN,
    )
    return render(
        request,
        "model.html.j2",
        model=model,
        listing=listing,
        audit=audit,
        audit_before=audit_before,
        audit_older=older,
        audit_shown=AUDIT_SHOWN,
    )


def _serving(deployments, model: str, version: int) -> list[dict]:
    """The deployments' variants serving ``model`` version ``version`` now (the deployments
    serving it are found by the service; only theirs are read)."""
    found = []
    for name in deployments.list(model=model, version=version)["name"]:
        deployment = deployments.get(name)
        for variant in deployment.variants:
            if variant.model == model and deployment.serving.get(variant.name) == version:
                found.append(
                    {
                        "deployment": name,
                        "variant": variant.name,
                        "role": variant.role,
                        "weight": variant.weight,
                    }
                )
    return found


@router.get("/models/{name}/versions/{version}")
def version_page(
    request: Request, user: Viewer, name: str, version: int, done: str | None = None
) -> Response:
    """One version: metrics, tags, aliases, signature, the release gates' verdicts on it
    (each check's statistic, threshold and verdict), lineage from data and commit to the
    deployments serving it; the alias moves to it waiting for approvals (who approved, how
    many of how many); for editors and approvers, the form that moves or approves an alias
    (see :mod:`.version_actions`)."""
    return version_view(request, name, version, notice=DONE.get(done or ""))


#: What a change made from the version page says once done (``?done=``).
DONE = {
    "moved": "The alias now points at this version.",
    "approved": "Your approval is recorded in the audit log (it does not count toward a move "
    "you make yourself).",
}


def waiting_moves(pending, viewer: str | None = None) -> list[dict]:
    """A version's pending alias approvals (the registry's ``pending_approvals`` frame)
    grouped by alias: its approvals so far of those required, and each approver with the
    time and comment of their approval (and ``lapsed``: why it no longer counts, or
    ``None``), oldest first. ``approvals`` counts those that would hold if ``viewer`` (the
    signed-in user) moved the alias: approvers other than them, since an applier's own
    approval never counts (``own``: they approved it), whose approval still counts.

    >>> import pandas as pd
    >>> frame = pd.DataFrame([["champion", 2, "apo", "ok", 5, 1, 2, None]], columns=[
    ...     "alias", "version", "approver", "comment", "created_ms", "approvals", "required",
    ...     "lapsed"])
    >>> waiting_moves(frame)
    [{'alias': 'champion', 'approvals': 1, 'required': 2, 'own': False, 'approvers': \
[{'approver': 'apo', 'comment': 'ok', 'created_ms': 5, 'lapsed': None}]}]
    >>> [(m["approvals"], m["own"]) for m in waiting_moves(frame, "apo")]
    [(0, True)]
    >>> frame.loc[0, "lapsed"] = "user apo is disabled"
    >>> waiting_moves(frame)[0]["approvals"]
    0
    """
    moves: dict[str, dict] = {}
    for row in pending.itertuples():
        move = moves.setdefault(
            row.alias,
            {"alias": row.alias, "approvals": 0, "required": int(row.required), "own": False},
        )
        lapsed = row.lapsed if isinstance(row.lapsed, str) else None
        move.setdefault("approvers", []).append(
            {
                "approver": row.approver,
                "comment": row.comment,
                "created_ms": int(row.created_ms),
                "lapsed": lapsed,
            }
        )
    for move in moves.values():
        approvers = {a["approver"] for a in move["approvers"] if a["lapsed"] is None}
        move["own"] = viewer in {a["approver"] for a in move["approvers"]}
        move["approvals"] = len(approvers - {viewer})
    return list(moves.values())


def version_view(
    request: Request,
    name: str,
    version: int,
    *,
    problem: FormProblem | None = None,
    notice: str | None = None,
) -> Response:
    """The version page, with a form's ``problem`` shown beside it (and its status)."""
    registry = request.app.state.registry
    record = registry.get_version(name, version)
    lineage = registry.lineage(name, version)
    serving = _serving(request.app.state.deployments, name, version)
    aliases = registry.list_models(name)["aliases"]
    return render(
        request,
        "version.html.j2",
        status=200 if problem is None else problem.status,
        version=record,
        lineage=lineage,
        # Only this version's entries are read, not the model's (or the store's) whole log.
        gates=version_gate_verdicts(registry.audit(name, version=version), name, version),
        serving=serving,
        waiting=waiting_moves(
            registry.pending_approvals(name, version=version), signed_in_name(request)
        ),
        model_aliases={} if aliases.empty else dict(aliases.iloc[0]),
        problem=problem,
        notice=notice,
    )
