"""REST routes for deployments, generated from the service's operation table.

The caller's name is passed to :class:`~opsloop.serving.Deployments` as the acting user,
so its rules apply unchanged (editors change deployments, every change is audited under
the caller's name; protecting needs an admin, approving an approver). The operations, their
paths and their answers are :data:`~opsloop.serving.deployment_service.DEPLOYMENT_OPERATIONS`.

>>> sorted(route.name for route in router.routes if route.path.endswith("/{name:path}"))
['DeploymentService.deploy', 'DeploymentService.get', 'DeploymentService.retire']
"""

from __future__ import annotations

from fastapi import Request

from opsloop.server.operation_routes import operation_router
from opsloop.serving.deployment_service import DEPLOYMENT_OPERATIONS


def _deployments(request: Request):
    return request.app.state.deployments


router = operation_router(DEPLOYMENT_OPERATIONS, _deployments)
