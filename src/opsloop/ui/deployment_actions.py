"""Changes made from a deployment's page: new traffic weights, a rollback to an earlier
definition, a blue/green switch, the promotion of a challenger, and approvals of a
protected deployment's next definition.

Each is the deployments service's own audited operation, called as the REST API calls it
(the same least role, the signed-in user acting): ``deploy`` needs an editor and, for a
protected deployment, the approvals of exactly that definition first, by people other
than the one who deploys it (:mod:`opsloop.registry.separate_approvers`); ``approve``
needs an approver, once per person. A rollback is a ``deploy`` of the definition an earlier history
entry recorded; a promotion is a ``deploy`` of a ``single`` deployment whose primary
serves the version the challenger serves now (what the monitoring's ``promote`` action
deploys; the model's aliases stay where they are, moved from the version's page); a
blue/green switch is the service's ``switch`` (editor); a pending
approval can be approved again by another approver, or deployed, from the definition its
entry recorded.

Every form carries the definition's ``revision`` the page showed (and a promotion the
version it showed the challenger serving). A change made after the definition moved on (a
ramping canary's step, another person's deploy) or after the challenger's alias moved is
refused with a 409 shown beside the form, naming the change, and nothing changes: the
weights a form was filled with, or the version it named, are no longer what would be
replaced or promoted. The check is made here against the definition just read, to name the
change in the page's words, and again by the service inside its locked write
(``expected_revision``), so a change landing in between is refused too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import quote

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.errors import ConflictError, InvalidArgumentError, NotFoundError, OpsloopError
from opsloop.registry import User
from opsloop.serving import Variant
from opsloop.serving.deployment_service import DEPLOYMENT_OPERATIONS
from opsloop.ui.deployment_pages import deployment_view
from opsloop.ui.form_posts import (
    FormProblem,
    chosen_action,
    posted_form,
    require_operation_role,
)
from opsloop.ui.page_route import PageRoute
from opsloop.ui.refresh_query import posted_refresh, with_refresh
from opsloop.ui.session_check import page_user, session_secret

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]
#: What each button of the deployment's forms does: the service operation it calls.
DEFINITION_ACTIONS = {"deploy": "deploy", "approve": "approve"}


def posted_weights(variants: tuple[Variant, ...], fields: Mapping[str, str]) -> tuple:
    """``variants`` with the weights of the form's ``weight.NAME`` fields.

    >>> v = (Variant("a", "m", version=1), Variant("b", "m", version=2, role="candidate"))
    >>> [x.weight for x in posted_weights(v, {"weight.a": "0.75", "weight.b": ".25"})]
    [0.75, 0.25]
    >>> posted_weights(v, {"weight.a": "1", "weight.b": "lots"})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: weight.b: must be a number from 0 to 1, got 'lots'
    """
    changed = []
    for variant in variants:
        field = f"weight.{variant.name}"
        text = fields.get(field, "").strip()
        try:
            weight = float(text)
        except ValueError:
            weight = math.nan
        if not 0.0 <= weight <= 1.0:
            raise InvalidArgumentError(f"{field}: must be a number from 0 to 1, got {text[:40]!r}")
        changed.append(variant.with_weight(weight))
    return tuple(changed)


def shown_number(fields: Mapping[str, str], field: str) -> int:
    """The whole number ``field`` of a form carries (what the page showed: a revision, a
    version), 0 or more.

    >>> shown_number({"revision": "12"}, "revision")
    12
    >>> shown_number({}, "revision")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: revision: must be the whole number the page showed, got ''
    """
    text = fields.get(field, "").strip()
    if not text.isdigit() or len(text) > 18:
        raise InvalidArgumentError(
            f"{field}: must be the whole number the page showed, got {text[:40]!r}"
        )
    return int(text)


def unchanged_since(deployment, revision: int) -> None:
    """Refuse (409) a change made from a page that showed ``deployment`` at ``revision``
    when its definition has moved on since, naming who changed it and when.

    >>> from opsloop.serving import Deployment
    >>> d = Deployment("api", "single", "full_automation", (), None, 0, "cy", {}, revision=9)
    >>> unchanged_since(d, 9)
    >>> unchanged_since(d, 7)
    Traceback (most recent call last):
    opsloop.errors.ConflictError: revision: deployment 'api' changed after this page showed it...
    """
    if deployment.revision == revision:
        return
    when = pd.Timestamp(deployment.updated_ms, unit="ms").strftime("%Y-%m-%d %H:%M:%S")
    raise ConflictError(
        f"revision: deployment {deployment.name!r} changed after this page showed it "
        f"(revision {revision}): {deployment.updated_by} changed it at {when} UTC (revision "
        f"{deployment.revision}); nothing was changed: reload the page to see the change, "
        "then submit again"
    )


def recorded_definition(history, entry_id: int) -> dict:
    """The definition a ``deploy`` or ``approve`` entry of a deployment's history recorded:
    ``strategy``, ``automation`` and ``variants``."""
    rows = history[history["id"] == entry_id]
    if rows.empty or rows.iloc[0]["action"] not in ("deploy", "approve"):
        raise NotFoundError(f"entry: the deployment's history has no definition #{entry_id}")
    document = rows.iloc[0]["after"]
    return {
        "strategy": document["strategy"],
        "automation": document["automation"],
        "variants": tuple(Variant.from_dict(v) for v in document["variants"]),
    }


def _change(
    deployments, user: User, current, action: str, definition: dict, note, revision: int | None
) -> str:
    if action == "deploy":
        made = deployments.deploy(
            current.name,
            definition["variants"],
            strategy=definition["strategy"],
            automation=definition["automation"],
            description=current.description,
            actor=user.name,
            reason=note,
            expected_revision=revision,
        )
        # The definition in place, deployed again, changes nothing (its revision stays).
        return "deployed" if made.revision != current.revision else "unchanged"
    deployments.approve(
        current.name,
        definition["variants"],
        strategy=definition["strategy"],
        automation=definition["automation"],
        actor=user.name,
        comment=note,
        expected_revision=revision,
    )
    return "approved"


def _shown(deployments, name: str, fields):
    """The deployment now and the revision the page showed, refused if they differ."""
    revision = shown_number(fields, "revision")
    current = deployments.get(name)
    unchanged_since(current, revision)
    return current, revision


def _weights_change(deployments, user: User, name: str, action: str, fields) -> str:
    current, revision = _shown(deployments, name, fields)
    definition = {
        "strategy": current.strategy,
        "automation": current.automation,
        "variants": posted_weights(current.variants, fields),
    }
    return _change(deployments, user, current, action, definition, _note(fields), revision)


def _restore_change(deployments, user: User, name: str, action: str, fields) -> str:
    try:
        entry = int(fields.get("entry", ""))
    except ValueError:
        raise InvalidArgumentError(
            f"entry: must be a history entry's number, got {fields.get('entry', '')[:40]!r}"
        ) from None
    current, revision = _shown(deployments, name, fields)
    definition = recorded_definition(deployments.history(name), entry)
    note = _note(fields) or f"restored the definition of history entry #{entry}"
    # Approving a recorded definition does not depend on what serves now: only a deploy
    # replaces the definition the page showed.
    expected = revision if action == "deploy" else None
    return _change(deployments, user, current, action, definition, note, expected)


def promoted_definition(deployment, variant: str) -> dict:
    """The definition that promotes ``variant`` of ``deployment``: a ``single`` deployment
    whose primary (under its own name) serves the version ``variant`` serves now.

    >>> from opsloop.serving import Deployment, Variant
    >>> d = Deployment("api", "canary", "human_in_the_loop",
    ...                (Variant("stable", "m", alias="champion", weight=0.9),
    ...                 Variant("cand", "m", version=2, role="candidate", weight=0.1)),
    ...                None, 0, "ana", {"stable": 1, "cand": 2})
    >>> promoted = promoted_definition(d, "cand")
    >>> promoted["strategy"], promoted["automation"], promoted["variants"]
    ('single', 'human_in_the_loop', (Variant(name='stable', model='m', version=2, \
alias=None, role='primary', weight=1.0, shadow_sample=1.0),))
    >>> promoted_definition(d, "stable")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: variant: 'stable' is the primary of 'api': nothing...
    >>> promoted_definition(d, "other")
    Traceback (most recent call last):
    opsloop.errors.NotFoundError: variant: deployment 'api' has no variant 'other'
    """
    challenger = next((v for v in deployment.variants if v.name == variant), None)
    if challenger is None:
        raise NotFoundError(
            f"variant: deployment {deployment.name!r} has no variant {variant[:250]!r}"
        )
    if challenger.role == "primary":
        raise InvalidArgumentError(
            f"variant: {variant!r} is the primary of {deployment.name!r}: nothing to promote"
        )
    version = deployment.serving.get(variant)
    if version is None:
        raise InvalidArgumentError(
            f"variant: {variant!r} serves no version of {challenger.model!r} to promote"
        )
    primary = next(v for v in deployment.variants if v.role == "primary")
    return {
        "strategy": "single",
        "automation": deployment.automation,
        "variants": (Variant(primary.name, challenger.model, version=version),),
    }


def _promote_change(deployments, user: User, name: str, action: str, fields) -> str:
    current, revision = _shown(deployments, name, fields)
    variant = fields.get("variant", "")
    definition = promoted_definition(current, variant)
    promoted = definition["variants"][0]
    shown = shown_number(fields, "version")
    if promoted.version != shown:
        # The challenger follows an alias that moved after the page was shown: promoting
        # would put a version nobody looked at on all the traffic.
        raise ConflictError(
            f"version: {variant!r} serves {promoted.model} v{promoted.version} now, not "
            f"v{shown} as this page showed; nothing was changed: reload the page to see "
            "the version it serves, then submit again"
        )
    note = _note(fields) or (
        f"promoted {variant!r} ({promoted.model} v{promoted.version}) to serve all traffic"
    )
    done = _change(deployments, user, current, action, definition, note, revision)
    return "promoted" if done == "deployed" else done


def _note(fields: Mapping[str, str]) -> str | None:
    return fields.get("note", "").strip() or None


async def _post(request: Request, user: User, name: str, form: str, change) -> Response:
    fields = await posted_form(request, session_secret(request))
    action = chosen_action(fields, DEFINITION_ACTIONS)
    require_operation_role(user, DEPLOYMENT_OPERATIONS, DEFINITION_ACTIONS[action])
    kept = posted_refresh(fields)
    deployments = request.app.state.deployments
    try:
        done = await run_in_threadpool(change, deployments, user, name, action, fields)
    except OpsloopError as error:
        problem = _problem(form, error, fields, name, kept)
        return await run_in_threadpool(deployment_view, request, name, problem=problem, kept=kept)
    address = with_refresh(f"/deployments/{quote(name, safe='')}?done={done}", kept)
    return RedirectResponse(address, status_code=303)


def _problem(
    form: str, error: OpsloopError, fields: dict, name: str, kept: int | None
) -> FormProblem:
    message = str(error)
    if isinstance(error, ConflictError):
        # The page shows the deployment as it is now; the form is filled from it again,
        # not with values meant for what it replaced (the note is kept).
        note = {"note": fields["note"]} if "note" in fields else {}
        reload = with_refresh(f"/deployments/{quote(name, safe='')}", kept)
        return FormProblem(form, message, None, error.status, note, reload=reload)
    field = message.split(":")[0] if message.startswith(("weight.", "entry:", "variant:")) else None
    return FormProblem.of(form, error, fields, field)


@router.post("/deployments/{name}/weights")
async def weights_form(request: Request, user: Viewer, name: str) -> Response:
    """Deploy the deployment with new traffic weights, or approve them (protected)."""
    return await _post(request, user, name, "weights", _weights_change)


@router.post("/deployments/{name}/promote")
async def promote_form(request: Request, user: Viewer, name: str) -> Response:
    """Promote a challenger (a candidate or a shadow): deploy it as the only variant, under
    the primary's name, at the version it serves now; or approve that (protected)."""
    return await _post(request, user, name, "promote", _promote_change)


@router.post("/deployments/{name}/switch")
async def switch_form(request: Request, user: Viewer, name: str) -> Response:
    """Switch a blue/green deployment (the service's audited ``switch``, editor role)."""
    fields = await posted_form(request, session_secret(request))
    require_operation_role(user, DEPLOYMENT_OPERATIONS, "switch")
    kept = posted_refresh(fields)
    deployments = request.app.state.deployments

    def switch() -> None:
        _, revision = _shown(deployments, name, fields)
        deployments.switch(name, actor=user.name, reason=_note(fields), expected_revision=revision)

    try:
        await run_in_threadpool(switch)
    except OpsloopError as error:
        problem = _problem("switch", error, fields, name, kept)
        return await run_in_threadpool(deployment_view, request, name, problem=problem, kept=kept)
    address = with_refresh(f"/deployments/{quote(name, safe='')}?done=switched", kept)
    return RedirectResponse(address, status_code=303)


@router.post("/deployments/{name}/restore")
async def restore_form(request: Request, user: Viewer, name: str) -> Response:
    """Deploy (roll back to) or approve the definition a history entry recorded."""
    return await _post(request, user, name, "restore", _restore_change)
