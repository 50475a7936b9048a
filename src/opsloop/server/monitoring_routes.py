"""REST routes for monitoring, generated from the service's operation table.

The caller's name is passed to :class:`~opsloop.monitoring.local_monitoring.Monitoring` as
the acting user (labels and references are kept under their sender's name). The
operations, their paths and their answers are
:data:`~opsloop.monitoring.monitoring_service.MONITORING_OPERATIONS`.

>>> sorted({route.path for route in router.routes})[:2]
['/api/v1/monitoring/gauges', '/api/v1/monitoring/{deployment:path}/actions']
"""

from __future__ import annotations

from fastapi import Request

from opsloop.monitoring.monitoring_service import MONITORING_OPERATIONS
from opsloop.server.operation_routes import operation_router


def _monitoring(request: Request):
    return request.app.state.monitoring


router = operation_router(MONITORING_OPERATIONS, _monitoring)
