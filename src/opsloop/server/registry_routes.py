"""REST routes for the model registry: models, versions, aliases, approvals, lineage, audit.

The caller's name is passed to :class:`~opsloop.registry.ModelRegistry` as the acting
user, so the registry's own rules apply unchanged: approvals need the approver role and
distinct people, protecting an alias needs admin, and every change lands in the audit log
under the caller's name.

Model names and aliases may contain ``/`` (the registry allows it), so they are matched as
paths; the routes ending in ``/protection``, ``/approvals`` and ``/versions/latest`` are
declared before the ones they would otherwise be read as.

>>> "/api/v1/models/{name:path}/lineage" in {route.path for route in router.routes}
True
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from opsloop.reports.frame_records import frame_records
from opsloop.server.identity import Editor, Viewer
from opsloop.server.response_models import ApprovalCount
from opsloop.server.wire import (
    AliasIn,
    ApprovalIn,
    DescriptionIn,
    ModelSearchIn,
    PathVersion,
    ProtectionIn,
    QueryName,
    QueryTimeMs,
    QueryVersion,
    VersionIn,
)
from opsloop.store.artifacts import check_sha256

router = APIRouter(prefix="/api/v1")


def _registry(request: Request):
    return request.app.state.registry


@router.get("/models")
def list_models(request: Request, _: Viewer) -> dict:
    """Every registered model with its latest version and aliases."""
    return {"models": frame_records(_registry(request).list_models())}


@router.post("/models/search")
def search_models(body: ModelSearchIn, request: Request, _: Viewer) -> dict:
    """Versions matching text, tags, alias and metric bounds, newest first."""
    frame = _registry(request).search(
        body.text,
        tags=body.tags or None,
        alias=body.alias,
        min_metrics=body.min_metrics or None,
        max_metrics=body.max_metrics or None,
    )
    return {"versions": frame_records(frame)}


@router.post("/models/{name:path}/versions", status_code=201)
def register_version(name: str, body: VersionIn, request: Request, user: Editor) -> dict:
    """Register a new version of ``name`` from an uploaded artifact."""
    version = _registry(request).register(
        name,
        flavor=body.flavor,
        artifact_sha256=body.artifact_sha256,
        run_id=body.run_id,
        input_schema=body.input_schema,
        output_type=body.output_type,
        metrics=body.metrics,
        tags=body.tags,
        description=body.description,
        actor=user.name,
        reason=body.reason,
    )
    return version.to_dict()


@router.get("/models/{name:path}/versions/latest")
def latest_version(name: str, request: Request, _: Viewer) -> dict:
    """The newest version of a model."""
    return _registry(request).get_version(name).to_dict()


@router.get("/models/{name:path}/versions/{version}")
def get_version(name: str, version: PathVersion, request: Request, _: Viewer) -> dict:
    """One version of a model."""
    return _registry(request).get_version(name, version).to_dict()


@router.get("/models/{name:path}/loader")
def loader(
    name: str,
    request: Request,
    _: Viewer,
    version: QueryVersion | None = None,
    alias: QueryName | None = None,
) -> dict:
    """What a client needs to load a version: the version (with its artifact sha256) and the
    loader record kept at registration (for skops, the exact types trusted on load)."""
    registry = _registry(request)
    found = registry.get_version(name, version, alias)
    return {"version": found.to_dict(), "loader": registry.loader_record(name, found.version)}


@router.put("/models/{name:path}/description", status_code=204)
def set_description(name: str, body: DescriptionIn, request: Request, user: Editor) -> None:
    """Replace a model's description."""
    _registry(request).set_description(name, body.description, actor=user.name)


@router.put("/models/{name:path}/aliases/{alias:path}/protection", status_code=204)
def protect_alias(
    name: str, alias: str, body: ProtectionIn, request: Request, user: Editor
) -> None:
    """Require approvals before the alias moves (the registry checks the admin role)."""
    _registry(request).protect_alias(
        name, alias, body.required_approvals, actor=user.name, reason=body.reason
    )


@router.post(
    "/models/{name:path}/aliases/{alias:path}/approvals",
    status_code=201,
    response_model=ApprovalCount,
)
def approve(name: str, alias: str, body: ApprovalIn, request: Request, user: Viewer) -> dict:
    """Approve moving the alias to a version (the registry checks the approver role)."""
    count = _registry(request).approve(
        name, alias, body.version, actor=user.name, comment=body.comment
    )
    return {"approvals": count}


@router.get("/models/{name:path}/aliases/{alias:path}")
def get_alias(
    name: str,
    alias: str,
    request: Request,
    _: Viewer,
    at_ms: QueryTimeMs | None = None,
) -> dict:
    """The version the alias points at now, or (``at_ms``) pointed at then."""
    registry = _registry(request)
    if at_ms is not None:
        return {"model": name, "alias": alias, "version": registry.alias_at(name, alias, at_ms)}
    return registry.get_version(name, alias=alias).to_dict()


@router.put("/models/{name:path}/aliases/{alias:path}", status_code=204)
def set_alias(name: str, alias: str, body: AliasIn, request: Request, user: Editor) -> None:
    """Point the alias at a version (protected aliases need their approvals first)."""
    _registry(request).set_alias(name, alias, body.version, actor=user.name, reason=body.reason)


@router.get("/models/{name:path}/lineage")
def lineage(
    name: str,
    request: Request,
    _: Viewer,
    version: QueryVersion | None = None,
    alias: QueryName | None = None,
) -> dict:
    """Artifact, run, code, packages and data sets behind a version."""
    return _registry(request).lineage(name, version=version, alias=alias).to_dict()


@router.get("/audit")
def audit(request: Request, _: Viewer, model: QueryName | None = None) -> dict:
    """The audit log, oldest first (all entities, or one model's)."""
    return {"entries": frame_records(_registry(request).audit(model))}


@router.get("/audit/verify")
def verify_audit(request: Request, _: Viewer, head: str | None = None) -> dict:
    """Whether the keyed chain of the audit log is intact, still holds the published
    ``head``, and agrees with the current state."""
    if head is not None:
        check_sha256(head, "head")
    return _registry(request).verify_audit_log(head=head).to_dict()


@router.get("/audit/head")
def audit_head(request: Request, _: Viewer) -> dict:
    """The audit log's newest entry (id, time, hash) and its length, to publish."""
    return _registry(request).audit_head()
