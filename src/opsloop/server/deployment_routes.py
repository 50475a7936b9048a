"""REST routes for deployments: define, change, retire, read, lineage, history, time T.

The caller's name is passed to :class:`~opsloop.serving.Deployments` as the acting user,
so its rules apply unchanged (editors change deployments, every change is audited under
the caller's name; protecting needs an admin, approving an approver). Deployment names are
one URL segment (no ``/``), so ``NAME/lineage`` and the like cannot be mistaken for a name.

>>> "/api/v1/deployments/{name:path}/lineage" in {route.path for route in router.routes}
True
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from opsloop.reports.frame_records import frame_records
from opsloop.server.identity import Editor, Viewer
from opsloop.server.response_models import ApprovalCount
from opsloop.server.wire import (
    DeploymentApprovalIn,
    DeploymentIn,
    ProtectionIn,
    QueryName,
    QueryText,
    QueryTimeMs,
)
from opsloop.serving import Variant

router = APIRouter(prefix="/api/v1")


def _deployments(request: Request):
    return request.app.state.deployments


def _variants(body: DeploymentIn | DeploymentApprovalIn) -> list[Variant]:
    return [Variant(**variant.model_dump()) for variant in body.variants]


@router.get("/deployments")
def list_deployments(request: Request, _: Viewer) -> dict:
    """Every deployment with its strategy, automation level and variants."""
    return {"deployments": frame_records(_deployments(request).list())}


@router.get("/deployments/{name:path}/lineage")
def lineage(name: str, request: Request, _: Viewer, variant: QueryName | None = None) -> dict:
    """For each variant (or one): the lineage of the version it serves now."""
    found = _deployments(request).lineage(name, variant=variant)
    return {"variants": [entry.to_dict() for entry in found]}


@router.get("/deployments/{name:path}/history")
def history(name: str, request: Request, _: Viewer) -> dict:
    """Every change of the deployment, oldest first."""
    return {"entries": frame_records(_deployments(request).history(name))}


@router.put("/deployments/{name:path}/protection", status_code=204)
def protect(name: str, body: ProtectionIn, request: Request, user: Editor) -> None:
    """Require approvals before the deployment changes (the admin role is checked inside)."""
    _deployments(request).protect(
        name, body.required_approvals, actor=user.name, reason=body.reason
    )


@router.post("/deployments/{name:path}/approvals", response_model=ApprovalCount)
def approve(name: str, body: DeploymentApprovalIn, request: Request, user: Viewer) -> dict:
    """Approve one definition (the approver role is checked inside); the approvals so far."""
    count = _deployments(request).approve(
        name,
        _variants(body),
        strategy=body.strategy,
        automation=body.automation,
        actor=user.name,
        comment=body.comment,
    )
    return {"approvals": count}


@router.get("/deployments/{name:path}")
def get_deployment(
    name: str, request: Request, _: Viewer, at_ms: QueryTimeMs | None = None
) -> dict:
    """The deployment now, or (``at_ms``) as it was then (null if it did not exist)."""
    if at_ms is not None:
        found = _deployments(request).at(name, at_ms)
        return {"deployment": None if found is None else found.to_dict()}
    return _deployments(request).get(name).to_dict()


@router.put("/deployments/{name:path}")
def deploy(name: str, body: DeploymentIn, request: Request, user: Editor) -> dict:
    """Create the deployment or replace its definition."""
    made = _deployments(request).deploy(
        name,
        _variants(body),
        strategy=body.strategy,
        automation=body.automation,
        description=body.description,
        actor=user.name,
        reason=body.reason,
    )
    return made.to_dict()


@router.delete("/deployments/{name:path}", status_code=204)
def retire(name: str, request: Request, user: Editor, reason: QueryText | None = None) -> None:
    """Remove the deployment (its history stays)."""
    _deployments(request).retire(name, actor=user.name, reason=reason)
