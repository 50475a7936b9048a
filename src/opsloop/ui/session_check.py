"""Signing in to the dashboard: an API token buys a session kept in the store, whose id
alone the browser holds, in an HttpOnly, SameSite=Strict cookie.

A browser cannot send an ``Authorization`` header on a page load, so the login form takes
the same API token a client would use (or, on a server with no users, its installation
token), checks it with the server's own token check (the one the REST API applies to
``Authorization: Bearer``, handed to the dashboard when it is mounted) and starts a
session (:mod:`opsloop.registry.dashboard_sessions`): the cookie carries a random id, the
store keeps its sha256 beside the sha256 of the token, so neither a stolen cookie nor a
stolen database yields the token. Each page request finds the session, then asks the
server's rule who that token names now (``session_caller``): a session never grants more
than its token does at that moment, ends with the token (revoked, expired, its user
disabled), and ends when its user's role is no longer the one it started with. It also
ends when idle too long, at its absolute end, and when its user signs out. The REST API
itself never reads the cookie, so it cannot be driven cross-site through it. The cookies
and their ``Secure`` flag are :mod:`.session_cookies`'.

A request with neither a header nor a cookie is put to the same check without a token: on
a server whose settings let anonymous requests read, a page is shown to the anonymous
viewer the check names (no session, so no form that changes state), and a form's post is
refused by that check and sent to log in; otherwise every page sends the browser to log in.
"""

from __future__ import annotations

import hmac
import re
from urllib.parse import quote, urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from opsloop.registry import User
from opsloop.registry.users import token_sha256
from opsloop.ui.session_cookies import clear_session_cookie, session_cookie

# What an API token or installation token may hold: printable ASCII without spaces.
_TOKEN = re.compile(r"[\x21-\x7e]{1,512}")


class LoginRequired(Exception):
    """The request carries no valid session; the page answers with a redirect to log in."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _as_bearer(request: Request, token: str) -> Request:
    """``request`` as if it carried ``Authorization: Bearer <token>``."""
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"authorization"]
    headers.append((b"authorization", f"Bearer {token}".encode("ascii")))
    return Request({**request.scope, "headers": headers})


def token_user(request: Request, token: str) -> User:
    """The user ``token`` names, by the server's check; :class:`LoginRequired` if none."""
    if not _TOKEN.fullmatch(token):
        raise LoginRequired("that is not an API token")
    try:
        return request.app.state.dashboard_caller(_as_bearer(request, token))
    except HTTPException as error:
        if error.status_code == 401:
            raise LoginRequired(str(error.detail)) from None
        raise


def _anonymous_user(request: Request) -> User:
    """Who a request without a token is, by the server's check; :class:`LoginRequired` if
    the server's settings let no such request in."""
    try:
        return request.app.state.dashboard_caller(request)
    except HTTPException as error:
        if error.status_code == 401:
            raise LoginRequired("sign in with an API token to see the dashboard") from None
        raise


def start_session(request: Request, token: str, user: User) -> str:
    """Start a dashboard session for ``user``, who signed in with ``token``; its id.
    :class:`LoginRequired` when the token stopped standing for ``user`` since it was
    checked (revoked, expired, its user disabled or given another role meanwhile).

    >>> from fastapi import FastAPI
    >>> from opsloop.registry.dashboard_sessions import DashboardSessions
    >>> from opsloop.registry.users import add_user, revoke_token
    >>> from opsloop.store import Database
    >>> db = Database("sqlite://"); ana, token = add_user(db, "ana", "viewer")
    >>> app = FastAPI(); app.state.dashboard_sessions = DashboardSessions(db)
    >>> request = Request({"type": "http", "app": app, "headers": []})
    >>> sid = start_session(request, token, ana)
    >>> found = app.state.dashboard_sessions.find(sid)
    >>> found.user, found.token_sha256 == token_sha256(token)
    (User(name='ana', role='viewer'), True)
    >>> _ = revoke_token(db, token); start_session(request, token, ana)
    Traceback (most recent call last):
    opsloop.ui.session_check.LoginRequired: the token was revoked or expired, or its user ...
    """
    installation = getattr(request.app.state, "installation_token", None)
    # The caller checked the token: an installation token stands only while no user exists.
    is_installation = installation is not None and hmac.compare_digest(
        token.encode(), installation.encode()
    )
    session_id = request.app.state.dashboard_sessions.start(
        token_sha256(token), user, installation=is_installation
    )
    if session_id is None:
        raise LoginRequired(
            "the token was revoked or expired, or its user disabled or given another role, "
            "while signing in; sign in again"
        )
    return session_id


def session_user(request: Request, session_id: str) -> User:
    """Who session ``session_id`` acts for at this request (see the module);
    :class:`LoginRequired` once it has ended, which ends it in the store too.

    >>> from fastapi import FastAPI
    >>> from opsloop.registry.dashboard_sessions import DashboardSessions
    >>> from opsloop.store import Database
    >>> from opsloop.registry.users import add_user
    >>> db = Database("sqlite://"); ana, token = add_user(db, "ana", "editor")
    >>> app = FastAPI(); app.state.dashboard_sessions = DashboardSessions(db)
    >>> request = Request({"type": "http", "app": app, "headers": []})
    >>> sid = start_session(request, token, ana)
    >>> app.state.dashboard_session_caller = lambda request, digest: User("ana", "editor")
    >>> session_user(request, sid)
    User(name='ana', role='editor')
    >>> app.state.dashboard_session_caller = lambda request, digest: User("ana", "admin")
    >>> session_user(request, sid)
    Traceback (most recent call last):
    opsloop.ui.session_check.LoginRequired: the session has ended: its user's role changed...
    >>> app.state.dashboard_sessions.find(sid) is None
    True
    """
    sessions = request.app.state.dashboard_sessions
    found = sessions.find(session_id)
    if found is None:
        raise LoginRequired("the session has ended; sign in again")
    try:
        user = request.app.state.dashboard_session_caller(request, found.token_sha256)
    except HTTPException as error:
        if error.status_code == 401:
            sessions.end(session_id)
            raise LoginRequired(f"the session has ended: {error.detail}") from None
        raise
    if user != found.user:
        # Another role than the one signed in with: sign in again to act with it.
        sessions.end(session_id)
        raise LoginRequired("the session has ended: its user's role changed; sign in again")
    return user


def page_user(request: Request) -> User:
    """The signed-in user of a page request (a FastAPI dependency).

    An ``Authorization`` header counts as it does for the API; otherwise the session cookie;
    with neither, the server's rule for a request without a token.
    """
    header = request.headers.get("authorization")
    secret: str | None
    if header is not None:
        try:
            user = request.app.state.dashboard_caller(request)
        except HTTPException as error:
            if error.status_code == 401:
                raise LoginRequired(str(error.detail)) from None
            raise
        secret = header.partition(" ")[2].strip()
    else:
        secret = session_cookie(request)
        if secret is None:
            user = _anonymous_user(request)
        else:
            user = session_user(request, secret)
    request.state.dashboard_user = user
    request.state.dashboard_secret = secret
    return user


def session_secret(request: Request) -> str:
    """What the page request's CSRF token is derived from (after :func:`page_user`): its
    session id, or the API token of a request that sent one in its header; a
    :class:`LoginRequired` for an anonymous one, which has no session to post a form in.

    >>> request = Request({"type": "http", "headers": []})
    >>> request.state.dashboard_secret = None
    >>> session_secret(request)
    Traceback (most recent call last):
    opsloop.ui.session_check.LoginRequired: sign in with an API token to change anything
    """
    secret = request.state.dashboard_secret
    if secret is None:
        raise LoginRequired("sign in with an API token to change anything")
    return secret


def login_redirect(request: Request, error: LoginRequired) -> Response:
    """Where a page without a valid session sends the browser: the login form, then back
    to the page (for a form's post, the page that posted it: the post itself is not
    repeated)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        referer = urlsplit(request.headers.get("referer", ""))
        same = referer.netloc == request.headers.get("host") and referer.path.startswith("/")
        target = referer.path if same else "/"
    response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    if session_cookie(request) is not None:
        clear_session_cookie(response, request)
    return response
