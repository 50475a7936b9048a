"""REST routes for the model registry, generated from the service's operation table.

The caller's name is passed to :class:`~opsloop.registry.ModelRegistry` as the acting
user, so the registry's own rules apply unchanged: approvals need the approver role and
distinct people, protecting an alias needs admin, and every change lands in the audit log
under the caller's name. The operations, their paths and their answers are
:data:`~opsloop.registry.registry_service.REGISTRY_OPERATIONS`.

>>> sorted(route.path for route in router.routes if route.path.startswith("/api/v1/audit"))
['/api/v1/audit', '/api/v1/audit/head', '/api/v1/audit/verify']
"""

from __future__ import annotations

from fastapi import Request

from opsloop.registry.registry_service import REGISTRY_OPERATIONS
from opsloop.server.operation_routes import operation_router


def _registry(request: Request):
    return request.app.state.registry


router = operation_router(REGISTRY_OPERATIONS, _registry)
