"""REST routes for users, generated from the users' operation table.

The caller's name is passed to :class:`~opsloop.registry.local_users.LocalUsers` as the
acting user, which must be an admin (checked at the route and again in the change's
transaction). The operations, their paths and their answers are
:data:`~opsloop.registry.user_service.USER_OPERATIONS`.

>>> for route in router.routes:
...     print(*route.methods, route.path)
PUT /api/v1/users/{name:path}/role
POST /api/v1/users/{name:path}/disable
POST /api/v1/users/{name:path}/enable
DELETE /api/v1/tokens/{token_id}
POST /api/v1/users/{name:path}/tokens/rotate
"""

from __future__ import annotations

from fastapi import Request

from opsloop.registry.user_service import USER_OPERATIONS
from opsloop.server.operation_routes import operation_router


def _users(request: Request):
    return request.app.state.users


router = operation_router(USER_OPERATIONS, _users)
