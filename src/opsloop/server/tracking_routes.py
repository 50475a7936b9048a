"""REST routes for experiments and runs, generated from the tracking service's table.

Each route is a thin call into :class:`~opsloop.tracking.LocalTrackingStore`, which
validates the values; an unknown run or experiment is a 404, a broken rule a 422 naming
it. Writing needs the editor role, reading the viewer role, and a new run's user is the
caller. The operations, their paths and their answers are
:data:`~opsloop.tracking.tracking_service.TRACKING_OPERATIONS`; the artifact routes, whose
bodies are bytes, are :mod:`.artifact_routes`.

>>> sorted(route.name for route in router.routes if route.path == "/api/v1/experiments")
['TrackingService.create_experiment', 'TrackingService.list_experiments']
"""

from __future__ import annotations

from fastapi import Request

from opsloop.server.operation_routes import operation_router
from opsloop.tracking.tracking_service import TRACKING_OPERATIONS


def _tracking(request: Request):
    return request.app.state.tracking


router = operation_router(TRACKING_OPERATIONS, _tracking)
