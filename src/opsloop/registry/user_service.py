"""The users' contract: the operations on users that cross HTTP, and how.

:class:`UserService` names them: the local :class:`~opsloop.registry.local_users.LocalUsers`
on a store and :class:`~opsloop.registry.http_users.HttpUsers` on a server both satisfy it
(a test checks their signatures against it). :data:`USER_OPERATIONS` places each operation
on the wire; the server's routes and the HTTP client are generated from it
(:mod:`opsloop.contract`). Every operation here needs the admin role; the token's owner
acts and the audit log names them.

Adding users and issuing tokens stay on the store (``opsloop users add``): a token is
shown once, to whoever can open the store, and never travels over the API.

>>> operation = USER_OPERATIONS.operation("set_user_role")
>>> operation.verb, operation.path, operation.role
('PUT', '/users/{name:path}/role', 'admin')
>>> USER_OPERATIONS.body_model(operation)(role="boss")
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for UserSetUserRoleIn
role
...
"""

from __future__ import annotations

from typing import Annotated, Protocol

from pydantic import Field

from opsloop.contract.operation import Operation, ServiceTable, record
from opsloop.contract.wire_types import Name, OneOf
from opsloop.registry.users import ROLES, User

#: A user's name on the wire: as :func:`~opsloop.registry.users.add_user` takes it.
UserName = Annotated[Name, Field(min_length=1)]
Role = Annotated[str, OneOf(ROLES)]


class UserService(Protocol):
    """Users and their roles (see :mod:`opsloop.registry.users` for the rules). ``actor``
    is the acting user: locally it defaults to the store's owner, over HTTP the token's
    owner acts."""

    def set_user_role(self, name: UserName, role: Role, *, actor: str | None = None) -> User:
        """Give a user another role (admin); the user as they now are. Their dashboard
        sessions end; the last enabled admin cannot be given another role (409)."""
        ...


#: The users' operations on the wire.
USER_OPERATIONS = ServiceTable(
    UserService,
    [
        Operation(
            "set_user_role", "PUT", "/users/{name:path}/role", role="admin", answer=record(User)
        )
    ],
)

__all__ = ["USER_OPERATIONS", "Role", "UserName", "UserService"]
