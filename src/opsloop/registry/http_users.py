"""Users through an opsloop server: the users' contract (:mod:`.user_service`) over REST.

:class:`HttpUsers` is generated from :data:`~opsloop.registry.user_service.USER_OPERATIONS`
and returns the same records as :class:`~opsloop.registry.local_users.LocalUsers`. The
connection, the Bearer token (``OPSLOOP_TRACKING_TOKEN`` or ``token=``) and the error policy
are the tracking client's; the acting user is the token's owner, who must be an admin. A
server's refusal comes back as the local exception: :class:`~.users.UnknownUserError`,
:class:`~.users.UnknownTokenError`, :class:`~.users.PermissionDenied`,
:class:`~.users.LastAdminError`, or a ``ValueError`` naming the field. A token given to
``revoke_token`` in place of its id is refused before anything is sent.

>>> HttpUsers("http://127.0.0.1:5005/", token="olp_x")
HttpUsers('http://127.0.0.1:5005')
>>> HttpUsers("http://127.0.0.1:1").set_user_role("ana", "editor", actor="root")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: actor: over HTTP the acting user is the owner...
>>> HttpUsers("http://127.0.0.1:1").revoke_token("olp_secret")
Traceback (most recent call last):
opsloop.errors.InvalidArgumentError: token_id: give the token's 12-digit id (opsloop users ...
"""

from __future__ import annotations

from opsloop.contract.http_client import over_http
from opsloop.registry.http_registry import ServerClient
from opsloop.registry.user_service import USER_OPERATIONS, UserService
from opsloop.registry.users import (
    LastAdminError,
    PermissionDenied,
    UnknownTokenError,
    UnknownUserError,
)

__all__ = ["HttpUsers"]

_ERRORS = {
    kind.__name__: kind
    for kind in (PermissionDenied, UnknownUserError, UnknownTokenError, LastAdminError)
}


@over_http(USER_OPERATIONS)
class HttpUsers(ServerClient, UserService):
    """The users of the opsloop server at ``base_url``."""

    errors = _ERRORS
