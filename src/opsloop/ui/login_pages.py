"""The login form, and logout (see :mod:`.session_check` for how a session is kept).

Both are checked against forged posts twice: the post's ``Origin`` must name this server,
and the form must carry its CSRF token. Logging out ends the session, so its form carries
the session's token (:func:`~.form_posts.csrf_token`). Logging in happens before any
session: the login page gives the browser a pre-session value in the ``opsloop_login``
cookie (``__Host-opsloop_login`` when secure, :mod:`.session_cookies`) and puts an HMAC
of it in the form, which another site can neither read nor compute. A missing or wrong
token is a 403 and nothing changes: no session starts, none ends.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from opsloop.ui.form_posts import CSRF_FIELD, csrf_matches, csrf_token, same_origin
from opsloop.ui.page_route import PageRoute
from opsloop.ui.rendering import render
from opsloop.ui.session_check import LoginRequired, start_session, token_user
from opsloop.ui.session_cookies import (
    clear_login_cookie,
    clear_session_cookie,
    given_login_nonce,
    login_nonce,
    session_cookie,
    set_login_cookie,
    set_session_cookie,
)

router = APIRouter(route_class=PageRoute)
#: What the login form's CSRF token is an HMAC of, besides the pre-session value.
LOGIN_PURPOSE = b"opsloop login form v1"
_FORM = "application/x-www-form-urlencoded"


def _local_path(target: str | None) -> str:
    """``target`` if it is a path on this server, else ``/`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def _login_form(request: Request, next_path: str, message: str | None, status: int) -> Response:
    embedded = request.app.state.installation_token is not None
    nonce, new = login_nonce(request)
    response = render(
        request,
        "login.html.j2",
        status=status,
        next_path=next_path,
        message=message,
        embedded=embedded,
        user=None,
        login_csrf=csrf_token(nonce, LOGIN_PURPOSE),
    )
    if new:
        set_login_cookie(response, request, nonce)
    return response


async def _form_fields(request: Request, action: str, allowed: str) -> dict[str, str]:
    """The fields of a form posted to ``action``: one value each, at most four fields."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != _FORM:
        raise HTTPException(415, f"{action}: the body must be a form ({_FORM})")
    try:
        fields = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=4)
    except ValueError:
        raise HTTPException(422, f"{action}: the form has fields other than {allowed}") from None
    return {name: values[-1] for name, values in fields.items()}


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    """The login form."""
    return _login_form(request, _local_path(next), None, 200)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token from the form and start a session, whose id the cookie keeps."""
    if not same_origin(request):
        raise HTTPException(403, "login: the form must be posted from this server's own page")
    fields = await _form_fields(request, "login", f"token, next and {CSRF_FIELD}")
    nonce = given_login_nonce(request)
    if nonce is None or not csrf_matches(fields.get(CSRF_FIELD, ""), nonce, LOGIN_PURPOSE):
        raise HTTPException(
            403,
            f"{CSRF_FIELD}: missing or not this login form's; reload the login page and "
            "log in again",
        )
    next_path = _local_path(fields.get("next", "/"))
    token = fields.get("token", "").strip()
    if not token:
        return _login_form(request, next_path, "token: enter an API token", 422)
    try:
        user = token_user(request, token)
        # Checked again as the session is stored: a change committed since is seen.
        session_id = start_session(request, token, user)
    except LoginRequired as error:
        return _login_form(request, next_path, f"token: {error.detail}", 401)
    response = RedirectResponse(next_path, status_code=303)
    previous = session_cookie(request)
    if previous is not None:
        # Signing in again replaces the browser's session, which ends.
        request.app.state.dashboard_sessions.end(previous)
    set_session_cookie(response, request, session_id)
    clear_login_cookie(response, request)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session: its row in the store is deleted and the cookie cleared."""
    if not same_origin(request):
        raise HTTPException(403, "logout: the form must be posted from this server's own page")
    response = RedirectResponse("/login", status_code=303)
    session_id = session_cookie(request)
    if session_id is None:
        return response  # no session: nothing to end
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields = await _form_fields(request, "logout", CSRF_FIELD) if kind == _FORM else {}
    if not csrf_matches(fields.get(CSRF_FIELD, ""), session_id):
        raise HTTPException(
            403,
            f"{CSRF_FIELD}: missing or not this session's; reload the page and log out again",
        )
    request.app.state.dashboard_sessions.end(session_id)
    clear_session_cookie(response, request)
    return response
