"""The login form and logout (see :mod:`.session_check` for how a session is kept)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from opsloop.ui.page_route import PageRoute
from opsloop.ui.rendering import render
from opsloop.ui.session_check import COOKIE, LoginRequired, token_user

router = APIRouter(route_class=PageRoute)


def _local_path(target: str | None) -> str:
    """``target`` if it is a path on this server, else ``/`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def _same_origin(request: Request) -> bool:
    """A form post from this server's own pages: its Origin, when sent, names this server.

    The host and port are compared, not the scheme: behind a proxy that ends TLS the page's
    origin is https while the request reaching us is http. The Host itself was checked
    against the allowed names before any route.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host")


def _login_form(request: Request, next_path: str, message: str | None, status: int) -> Response:
    embedded = request.app.state.installation_token is not None
    return render(
        request,
        "login.html.j2",
        status=status,
        next_path=next_path,
        message=message,
        embedded=embedded,
        user=None,
    )


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    """The login form."""
    return _login_form(request, _local_path(next), None, 200)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token from the form and keep it in the session cookie."""
    if not _same_origin(request):
        raise HTTPException(403, "login: the form must be posted from this server's own page")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(
            415, "login: the body must be a form (application/x-www-form-urlencoded)"
        )
    try:
        fields = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=4)
    except ValueError:
        raise HTTPException(422, "login: the form has fields other than token and next") from None
    next_path = _local_path((fields.get("next") or ["/"])[0])
    token = (fields.get("token") or [""])[0].strip()
    if not token:
        return _login_form(request, next_path, "token: enter an API token", 422)
    try:
        token_user(request, token)
    except LoginRequired as error:
        return _login_form(request, next_path, f"token: {error.detail}", 401)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session: the cookie is cleared."""
    if not _same_origin(request):
        raise HTTPException(403, "logout: the form must be posted from this server's own page")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
