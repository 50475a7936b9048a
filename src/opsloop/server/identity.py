"""Who is calling: an API token (``Authorization: Bearer olp_...``) or, embedded, the OS user.

A token resolves to its user and role through :func:`opsloop.registry.users.resolve_token`
(the store keeps only token hashes), or, where the app holds a ``token_cache`` (the data
plane does), through :class:`~opsloop.registry.token_cache.TokenCache`, which remembers
tokens while the audit log stands still and leaves the audit id it read in
``request.state.audit_revision``. The id of the token found is kept in the request's origin
(:mod:`.request_origin`), which the audited changes it makes record. Once any user exists
in the store every request needs a valid token. Before that, an app built with
``allow_embedded=True`` (a server bound to the loopback interface) serves the OS user who
started it (``app.state.os_user``) with the admin role, to requests that carry the
installation token (:mod:`opsloop.store.installation_token`,
``app.state.installation_token``): a file only that user can read, so other accounts on the
machine and web pages cannot act. An app that is not embedded and has no users refuses
everything, so a server reachable from the network is never left open.

A request with no ``Authorization`` header at all is anonymous. What it may do is the
server's setting ``anonymous`` (``opsloop server --anonymous``, ``app.state.anonymous``):
``none`` (the default) refuses it with a 401, ``read`` lets it read what a viewer reads
(``GET`` and ``HEAD``, and the operations whose contract marks them ``reads_only``: the
searches sent as ``POST`` because their question is long, as the user :data:`ANONYMOUS`)
and refuses anything else with a 401, so a change always names a user. A token that is
sent and is wrong is a 401 under either setting, never read as anonymous.

A store with a viewer (``db`` is an empty in-memory store):

>>> from fastapi.testclient import TestClient
>>> from opsloop.registry import add_user
>>> from opsloop.server import create_app
>>> client = TestClient(create_app(db), base_url="http://127.0.0.1:5005")
>>> viewer = {"Authorization": f"Bearer {add_user(db, 'vic', 'viewer')[1]}"}
>>> client.get("/api/v1/experiments", headers=viewer).status_code
200
>>> client.post("/api/v1/experiments", json={"name": "churn"}, headers=viewer).json()["detail"]
"user 'vic' has role 'viewer'; this needs 'editor'"
>>> client.get("/api/v1/experiments").json()["detail"]
'this server needs an API token (Authorization: Bearer ...); the installation token stops...'
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request

from opsloop.errors import InvalidArgumentError
from opsloop.registry import ROLES, User
from opsloop.registry.users import resolve_token, resolve_token_sha256
from opsloop.registry.users import token_sha256 as hashed_token
from opsloop.store import tables
from opsloop.store.audit_origin import current_request

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
#: What a request without a token may do: nothing, or read as a viewer.
ANONYMOUS_ACCESS = ("none", "read")
#: Who an anonymous request is, where the server lets it read.
ANONYMOUS = User("anonymous", "viewer")
#: The token a change made with the installation token records in its origin: that token
#: is a secret file, not a stored token with an id.
INSTALLATION_TOKEN_ID = "installation"
#: The methods that only read.
_READING = ("GET", "HEAD")


def anonymous_access(setting: str) -> str:
    """``setting`` checked as the server's ``anonymous`` setting.

    >>> anonymous_access("read")
    'read'
    >>> anonymous_access("write")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: anonymous: must be one of none, read, got 'write'
    """
    if setting not in ANONYMOUS_ACCESS:
        raise InvalidArgumentError(
            f"anonymous: must be one of {', '.join(ANONYMOUS_ACCESS)}, got {setting!r}"
        )
    return setting


def store_has_users(db) -> bool:
    """Whether any user (hence any token) is registered in the store.

    >>> from opsloop.registry import add_user
    >>> store_has_users(db)
    False
    >>> _ = add_user(db, "ana", "viewer"); store_has_users(db)
    True
    """
    with db.read() as connection:
        return connection.execute(sa.select(tables.users.c.id).limit(1)).first() is not None


def caller(request: Request) -> User:
    """The user making ``request`` (a FastAPI dependency); 401 when it cannot be resolved.

    On a loopback server with no users (``db`` is an empty store), the installation token
    acts as the OS user who started it:

    >>> from fastapi import Depends, FastAPI
    >>> from fastapi.testclient import TestClient
    >>> from opsloop.server import create_app
    >>> app = create_app(db)
    >>> @app.get("/whoami")
    ... def whoami(user: User = Depends(caller)) -> dict:
    ...     return {"name": user.name, "role": user.role}
    >>> client = TestClient(app, base_url="http://127.0.0.1:5005")
    >>> token = app.state.installation_token
    >>> answer = client.get("/whoami", headers={"Authorization": f"Bearer {token}"}).json()
    >>> answer == {"name": app.state.os_user, "role": "admin"}
    True
    >>> client.get("/whoami", headers={"Authorization": f"Basic {token}"}).json()["detail"]
    "Authorization header must be 'Bearer <token>'"
    >>> print(client.get("/whoami").json()["detail"])
    this server has no users, so a request needs its installation token...
    """
    return identified(request)


def identified(request: Request, *, reads_only: bool = False) -> User:
    """The user making ``request`` (see :func:`caller`), where ``reads_only`` says that the
    route only reads although its method is not ``GET`` (a search sent as ``POST``), so an
    anonymous request may make it on a server that lets them read.

    >>> from fastapi.testclient import TestClient
    >>> from opsloop.server import create_app
    >>> app = create_app(db, anonymous="read")
    >>> @app.post("/find")
    ... def find(request: Request) -> dict:
    ...     return {"name": identified(request, reads_only=True).name}
    >>> @app.post("/change")
    ... def change(request: Request) -> dict:
    ...     return {"name": identified(request).name}
    >>> client = TestClient(app, base_url="http://127.0.0.1:5005")
    >>> client.post("/find").json(), client.post("/change").status_code
    ({'name': 'anonymous'}, 401)
    """
    state = request.app.state
    cache = getattr(state, "token_cache", None)
    if cache is not None:
        # One read of the newest audit id, kept for the route (the data plane follows its
        # deployments by the same number), instead of reading the tokens on every request.
        request.state.audit_revision = cache.follow()
    header = request.headers.get("authorization")
    token = None
    if header is None and getattr(state, "anonymous", "none") == "read":
        if request.method in _READING or reads_only:
            return ANONYMOUS
        raise HTTPException(
            401,
            "this server lets requests without an API token read only; a change needs one "
            "(Authorization: Bearer ...)",
            headers=_UNAUTHORIZED,
        )
    if header is not None:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(
                401, "Authorization header must be 'Bearer <token>'", headers=_UNAUTHORIZED
            )
        installation = state.installation_token
        if installation is None or not hmac.compare_digest(token.encode(), installation.encode()):
            found = resolve_token(state.db, token) if cache is None else cache.credential(token)
            if found is None:
                raise HTTPException(401, "unknown or revoked API token", headers=_UNAUTHORIZED)
            _record_token(found.token_id)
            return found.user
    return _embedded_user(state, cache, token_given=token is not None)


def session_caller(request: Request, token_sha256: str) -> User:
    """The user a dashboard session acts as now: the one the token whose sha256 is
    ``token_sha256`` names at this request, by the rules :func:`identified` applies to that
    token sent as ``Authorization: Bearer``; 401 once it names nobody (revoked, expired, its
    user disabled; the installation token once the store has users).

    >>> from opsloop.registry import add_user
    >>> from opsloop.registry.users import revoke_token, token_sha256
    >>> from opsloop.server import create_app
    >>> app = create_app(db, allow_embedded=False)
    >>> _, token = add_user(db, "ida", "editor")
    >>> request = Request({"type": "http", "app": app, "headers": []})
    >>> session_caller(request, token_sha256(token))
    User(name='ida', role='editor')
    >>> _ = revoke_token(db, token)
    >>> session_caller(request, token_sha256(token))
    Traceback (most recent call last):
    fastapi.exceptions.HTTPException: 401: unknown or revoked API token
    """
    state = request.app.state
    cache = getattr(state, "token_cache", None)
    installation = state.installation_token
    if installation is not None and hmac.compare_digest(
        token_sha256.encode(), hashed_token(installation).encode()
    ):
        return _embedded_user(state, cache, token_given=True)
    found = resolve_token_sha256(state.db, token_sha256)
    if found is None:
        raise HTTPException(401, "unknown or revoked API token", headers=_UNAUTHORIZED)
    _record_token(found.token_id)
    return found.user


def _embedded_user(state, cache, *, token_given: bool) -> User:
    """The OS user, for a request that carries the installation token (``token_given``) or
    none; 401 once the store has users, on a server not embedded, or without the token."""
    # Users are never deleted, so once there is one the answer stays "yes".
    if state.has_users or (store_has_users(state.db) if cache is None else cache.has_users()):
        state.has_users = True
        raise HTTPException(
            401,
            "this server needs an API token (Authorization: Bearer ...); the installation "
            "token stops working once the store has users",
            headers=_UNAUTHORIZED,
        )
    if not state.allow_embedded:
        raise HTTPException(
            401,
            "this server is not in embedded mode and has no users; "
            "create one with 'opsloop users add NAME --role admin'",
            headers=_UNAUTHORIZED,
        )
    if not token_given:
        raise HTTPException(
            401,
            "this server has no users, so a request needs its installation token "
            "(Authorization: Bearer ...): the 'server-token' file in OPSLOOP_HOME of the "
            "account that started it; opsloop's clients on that account send it to loopback "
            "servers themselves",
            headers=_UNAUTHORIZED,
        )
    _record_token(INSTALLATION_TOKEN_ID)
    return User(state.os_user, "admin")


def _record_token(token_id: str) -> None:
    """Name the token in the request's origin, which its audited changes record."""
    origin = current_request()
    if origin is not None:
        origin.token = token_id


def require_role(role: str, *, reads_only: bool = False) -> Callable[[Request], Awaitable[User]]:
    """A dependency giving the caller if their role is at least ``role``, else 403;
    ``reads_only``: the route only reads though it is not a ``GET`` (see
    :func:`identified`).

    >>> require_role("boss")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: role must be one of viewer, editor, gatekeeper, appr...
    """
    if role not in ROLES:
        raise InvalidArgumentError(f"role must be one of {', '.join(ROLES)}, got {role!r}")

    # Async on purpose: a sync dependency costs a hop to the thread pool and back on every
    # request (3-4 ms of a 5 ms request on a busy machine); the token lookup is one indexed
    # read, short enough to run on the event loop.
    async def dependency(request: Request) -> User:
        user = identified(request, reads_only=reads_only)
        if not user.can(role):
            raise HTTPException(
                403, f"user {user.name!r} has role {user.role!r}; this needs {role!r}"
            )
        return user

    dependency.__name__ = f"require_{role}" + ("_to_read" if reads_only else "")
    return dependency


viewer = require_role("viewer")
editor = require_role("editor")

Viewer = Annotated[User, Depends(viewer)]
Editor = Annotated[User, Depends(editor)]
