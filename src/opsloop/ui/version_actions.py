"""Changes made from a version's page: point an alias at it, or approve that move.

Each is the registry's own audited operation, called as the REST API calls it (the same
least role, the signed-in user as the acting user): ``set_alias`` needs an editor and, for
a protected alias, the approvals first, by people other than the one who moves it
(:mod:`opsloop.registry.separate_approvers`); ``approve`` needs an approver, once per
person.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.errors import InvalidArgumentError, OpsloopError
from opsloop.registry import User
from opsloop.registry.registry_service import REGISTRY_OPERATIONS
from opsloop.ui.form_posts import (
    FormProblem,
    chosen_action,
    posted_form,
    require_operation_role,
)
from opsloop.ui.model_pages import version_view
from opsloop.ui.page_route import PageRoute
from opsloop.ui.session_check import page_user, session_secret

router = APIRouter(route_class=PageRoute)
Viewer = Annotated[User, Depends(page_user)]
#: What each button of the alias form does: the registry operation it calls.
ALIAS_ACTIONS = {"move": "set_alias", "approve": "approve"}


def _alias_change(registry, user: User, name: str, version: int, action: str, fields: dict) -> str:
    """Run the change the alias form asks for; the ``done`` code of the page after it."""
    alias = fields.get("alias", "").strip()
    if not alias:
        raise InvalidArgumentError("alias: give the alias to move")
    note = fields.get("note", "").strip() or None
    if action == "move":
        registry.set_alias(name, alias, version, actor=user.name, reason=note)
        return "moved"
    registry.approve(name, alias, version, actor=user.name, comment=note)
    return "approved"


@router.post("/models/{name}/versions/{version}/alias")
async def alias_form(request: Request, user: Viewer, name: str, version: int) -> Response:
    """Move an alias to this version, or approve moving it (the version page's form)."""
    fields = await posted_form(request, session_secret(request))
    action = chosen_action(fields, ALIAS_ACTIONS)
    require_operation_role(user, REGISTRY_OPERATIONS, ALIAS_ACTIONS[action])
    registry = request.app.state.registry
    try:
        done = await run_in_threadpool(_alias_change, registry, user, name, version, action, fields)
    except OpsloopError as error:
        problem = FormProblem.of("alias", error, fields, "alias")
        return await run_in_threadpool(version_view, request, name, version, problem=problem)
    return RedirectResponse(
        f"/models/{quote(name, safe='')}/versions/{version}?done={done}", status_code=303
    )
