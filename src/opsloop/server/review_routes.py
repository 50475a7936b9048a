"""REST routes for the review queue, generated from the service's operation table.

The caller's name is passed to :class:`~opsloop.serving.review_queue.ReviewQueue` as the
acting user (reviewers claim and answer under their own name). The operations, their paths
and their answers are :data:`~opsloop.serving.review_service.REVIEW_OPERATIONS`.

>>> for path in sorted(route.path for route in router.routes)[:2]:
...     print(path)
/api/v1/review/deployments/{deployment:path}/next
/api/v1/review/deployments/{deployment:path}/requests
"""

from __future__ import annotations

from fastapi import Request

from opsloop.server.operation_routes import operation_router
from opsloop.serving.review_service import REVIEW_OPERATIONS


def _review_queue(request: Request):
    return request.app.state.review_queue


router = operation_router(REVIEW_OPERATIONS, _review_queue)
