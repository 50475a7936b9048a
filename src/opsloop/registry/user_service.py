"""The users' contract: the operations on users that cross HTTP, and how.

:class:`UserService` names them: the local :class:`~opsloop.registry.local_users.LocalUsers`
on a store and :class:`~opsloop.registry.http_users.HttpUsers` on a server both satisfy it
(a test checks their signatures against it). :data:`USER_OPERATIONS` places each operation
on the wire; the server's routes and the HTTP client are generated from it
(:mod:`opsloop.contract`). Every operation here needs the admin role; the token's owner
acts and the audit log names them.

Adding users and issuing a further token stay on the store (``opsloop users add``,
``users token``). The one token that travels over the API is the one
:meth:`UserService.rotate_token` issues: in the answer to its admin, once (the store keeps
its hash, the audit log its id, and its record's ``repr`` leaves it out). A token is
revoked by its public id, so no token is ever sent in a URL.

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

from collections.abc import Mapping
from typing import Annotated, Any, Protocol

from pydantic import BeforeValidator, Field

from opsloop.contract.operation import Operation, ServiceTable, record
from opsloop.contract.wire_types import Name, OneOf, integral
from opsloop.errors import InvalidArgumentError
from opsloop.registry.users import (
    ROLES,
    TOKEN_ID_LENGTH,
    IssuedToken,
    RevokedToken,
    User,
    UserStatus,
)
from opsloop.tracking.limits import MAX_TIME_MS

#: A user's name on the wire: as :func:`~opsloop.registry.users.add_user` takes it.
UserName = Annotated[Name, Field(min_length=1)]
Role = Annotated[str, OneOf(ROLES)]
#: A token's public id (:func:`~opsloop.registry.users.token_id`): never the token itself.
TokenId = Annotated[str, Field(strict=True, pattern=f"^[0-9a-f]{{{TOKEN_ID_LENGTH}}}$")]
#: When a token expires, ms since the epoch (after now: checked by the store's clock).
ExpiresMs = Annotated[int, Field(strict=True, gt=0, le=MAX_TIME_MS), BeforeValidator(integral)]


def _an_id_not_a_token(arguments: Mapping[str, Any]) -> None:
    """Refuse, before anything is sent, a token given where its id belongs: the id travels
    in the URL, which proxies and access logs keep.

    >>> _an_id_not_a_token({"token_id": "olp_abc"})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: token_id: give the token's 12-digit id (opsloop ...
    """
    given = arguments["token_id"]
    if not (
        isinstance(given, str)
        and len(given) == TOKEN_ID_LENGTH
        and all(c in "0123456789abcdef" for c in given)
    ):
        shown = "a token" if str(given).startswith("olp_") else repr(str(given)[:16])
        raise InvalidArgumentError(
            f"token_id: give the token's {TOKEN_ID_LENGTH}-digit id (opsloop users tokens), "
            f"got {shown}; a token is never sent in a URL"
        )


class UserService(Protocol):
    """Users and their roles (see :mod:`opsloop.registry.users` for the rules). ``actor``
    is the acting user: locally it defaults to the store's owner, over HTTP the token's
    owner acts."""

    def set_user_role(self, name: UserName, role: Role, *, actor: str | None = None) -> User:
        """Give a user another role (admin); the user as they now are. Their dashboard
        sessions end; the last enabled admin cannot be given another role (409)."""
        ...

    def disable_user(self, name: UserName, *, actor: str | None = None) -> UserStatus:
        """Disable a user (admin): their tokens stop working and their dashboard sessions
        end at once; nothing is deleted. The user as they now are; disabling a disabled
        user changes nothing. The last enabled admin cannot be disabled (409)."""
        ...

    def enable_user(self, name: UserName, *, actor: str | None = None) -> UserStatus:
        """Enable a disabled user again (admin): their unrevoked, unexpired tokens work
        again; no dashboard session comes back. The user as they now are."""
        ...

    def revoke_token(self, token_id: TokenId, *, actor: str | None = None) -> RevokedToken:
        """Revoke one API token by its public id (admin): it stops working and the
        dashboard sessions started from it end at once. Its owner and the sessions ended;
        an unknown or already revoked id is a 404."""
        ...

    def rotate_token(
        self, name: UserName, expires_ms: ExpiresMs | None = None, *, actor: str | None = None
    ) -> IssuedToken:
        """Revoke every active token of a user and issue one new one (admin), expiring at
        ``expires_ms`` (ms since the epoch, after now) if given. The dashboard sessions of
        the revoked tokens end at once. The answer carries the new token, once: the store
        keeps only its hash."""
        ...


#: The users' operations on the wire.
USER_OPERATIONS = ServiceTable(
    UserService,
    [
        Operation(
            "set_user_role", "PUT", "/users/{name:path}/role", role="admin", answer=record(User)
        ),
        Operation(
            "disable_user",
            "POST",
            "/users/{name:path}/disable",
            role="admin",
            answer=record(UserStatus),
        ),
        Operation(
            "enable_user",
            "POST",
            "/users/{name:path}/enable",
            role="admin",
            answer=record(UserStatus),
        ),
        Operation(
            "revoke_token",
            "DELETE",
            "/tokens/{token_id}",
            role="admin",
            answer=record(RevokedToken),
            check=_an_id_not_a_token,
        ),
        Operation(
            "rotate_token",
            "POST",
            "/users/{name:path}/tokens/rotate",
            role="admin",
            answer=record(IssuedToken),
            created=True,
            secret=True,
        ),
    ],
)

__all__ = ["USER_OPERATIONS", "ExpiresMs", "Role", "TokenId", "UserName", "UserService"]
