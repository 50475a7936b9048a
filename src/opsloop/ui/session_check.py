"""Signing in to the dashboard: an API token, kept in an HttpOnly, SameSite=Strict cookie.

A browser cannot send an ``Authorization`` header on a page load, so the login form takes
the same API token a client would use (or, on a server with no users, its installation
token) and the server keeps it in the ``opsloop_session`` cookie. Each page then checks the
cookie with the server's own token check, the one the REST API applies to
``Authorization: Bearer``: the check is handed to the dashboard when it is mounted, so there
is one rule for who may see what. The cookie is HttpOnly (page scripts cannot read it),
SameSite=Strict (no other site's page or form sends it), Secure over HTTPS, and ends with
the browser session; revoking the token ends the session at its next request. The REST API
itself never reads the cookie, so it cannot be driven cross-site through it.

A request with neither a header nor a cookie is put to the same check without a token: on
a server whose settings let anonymous requests read, a page is shown to the anonymous
viewer the check names (no session, so no form that changes state), and a form's post is
refused by that check and sent to log in; otherwise every page sends the browser to log in.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from opsloop.registry import User

COOKIE = "opsloop_session"
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


def page_user(request: Request) -> User:
    """The signed-in user of a page request (a FastAPI dependency).

    An ``Authorization`` header counts as it does for the API; otherwise the session cookie;
    with neither, the server's rule for a request without a token.
    """
    header = request.headers.get("authorization")
    if header is not None:
        try:
            user = request.app.state.dashboard_caller(request)
        except HTTPException as error:
            if error.status_code == 401:
                raise LoginRequired(str(error.detail)) from None
            raise
        token = header.partition(" ")[2].strip()
    else:
        token = request.cookies.get(COOKIE)
        if token is None:
            user = _anonymous_user(request)
        else:
            user = token_user(request, token)
    request.state.dashboard_user = user
    request.state.dashboard_token = token
    return user


def session_token(request: Request) -> str:
    """The API token that signed in the page request (after :func:`page_user`); a
    :class:`LoginRequired` for an anonymous one, which has no session to post a form in."""
    token = request.state.dashboard_token
    if token is None:
        raise LoginRequired("sign in with an API token to change anything")
    return token


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
    if COOKIE in request.cookies:
        response.delete_cookie(COOKIE, path="/")
    return response
