"""Mount the dashboard's pages on an app: the one entry the server calls.

``install_dashboard(app, caller, ...)`` adds the pages (kept out of the OpenAPI document,
which describes the REST API only) and their static files. ``caller`` is the server's
function from a request to its user, ``session_caller`` the same rule for the token a
session was started from (by its sha256): the dashboard checks logins and sessions with
them, so pages and API share one rule for tokens and roles, and this surface does not
import the server's. ``sessions`` keeps the sessions in the store; ``secure_cookies`` says
when the cookies are marked ``Secure`` (:mod:`.session_cookies`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.resources import files

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from plotly.offline import get_plotlyjs
from starlette.types import ASGIApp, Receive, Scope, Send

from opsloop.registry import User
from opsloop.registry.dashboard_sessions import DashboardSessions
from opsloop.ui import (
    deployment_actions,
    deployment_pages,
    distribution_pages,
    live_pages,
    login_pages,
    model_pages,
    monitoring_pages,
    report_pages,
    result_pages,
    review_pages,
    run_pages,
    version_actions,
)
from opsloop.ui.rendering import TEMPLATES, render
from opsloop.ui.session_cookies import secure_cookies_setting

_STATIC_TYPES = {
    "dashboard.css": "text/css; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "poll.js": "text/javascript; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",
    "fragments.js": "text/javascript; charset=utf-8",
    "plotly.min.js": "text/javascript; charset=utf-8",
}


@cache
def _static(name: str) -> bytes:
    if name == "plotly.min.js":
        return get_plotlyjs().encode("utf-8")
    return files("opsloop.ui").joinpath("static", name).read_bytes()


def static_file(name: str) -> Response:
    """A file of the dashboard: its style, its chart script, or plotly.js from the installed
    ``plotly`` package (nothing is loaded from another site)."""
    if name not in _STATIC_TYPES:
        raise HTTPException(404, f"no static file {name!r}")
    return Response(
        _static(name),
        media_type=_STATIC_TYPES[name],
        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def compile_templates() -> int:
    """Compile every page template now (Jinja2 keeps them), so no visitor's first page
    waits for its template to be parsed and compiled; returns how many there are. A server
    calls it once before serving.

    >>> compile_templates() == len(TEMPLATES.list_templates()) > 20
    True
    """
    names = TEMPLATES.list_templates()
    for name in names:
        TEMPLATES.get_template(name)
    return len(names)


def install_dashboard(
    app: FastAPI,
    caller: Callable[[Request], User],
    *,
    sessions: DashboardSessions,
    session_caller: Callable[[Request, str], User],
    secure_cookies: str = "auto",
) -> None:
    """Serve the dashboard at ``/`` on ``app``, checking logins with ``caller`` and
    sessions, kept in ``sessions``, with ``session_caller`` (see the module).

    >>> from fastapi import FastAPI
    >>> from opsloop.store import Database
    >>> app = FastAPI()
    >>> install_dashboard(app, lambda request: User("ana", "viewer"),
    ...                   sessions=DashboardSessions(Database("sqlite://")),
    ...                   session_caller=lambda request, digest: User("ana", "viewer"))
    >>> app.url_path_for("version_page", name="churn", version=3)
    '/models/churn/versions/3'
    >>> install_dashboard(app, lambda request: User("ana", "viewer"),
    ...                   sessions=DashboardSessions(Database("sqlite://")),
    ...                   session_caller=lambda request, digest: User("ana", "viewer"),
    ...                   secure_cookies="sometimes")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: secure_cookies: must be one of auto, always, never, ...
    """
    app.state.secure_cookies = secure_cookies_setting(secure_cookies)
    app.state.dashboard_caller = caller
    app.state.dashboard_session_caller = session_caller
    app.state.dashboard_sessions = sessions
    pages = APIRouter(include_in_schema=False)
    pages.add_api_route("/", lambda: RedirectResponse("/runs", status_code=303), methods=["GET"])
    for module in (
        run_pages,
        model_pages,
        version_actions,
        deployment_pages,
        deployment_actions,
        live_pages,
        result_pages,
        monitoring_pages,
        distribution_pages,
        report_pages,
        review_pages,
        login_pages,
    ):
        pages.include_router(module.router)
    pages.add_api_route("/ui/static/{name}", static_file, methods=["GET"])
    app.include_router(pages)
    app.router.default = unknown_page(app.router.default)


def unknown_page(fallback: ASGIApp) -> ASGIApp:
    """What answers a request no route matched: for a browser asking for a page (a ``GET``
    accepting HTML, outside ``/api/``) the dashboard's error page, 404, so that a mistyped
    address shows a page with the way back; any other request goes to ``fallback`` (the
    API's JSON error).

    >>> import asyncio
    >>> sent = []
    >>> async def send(message): sent.append(message)
    >>> async def json_404(scope, receive, send): sent.append("fallback")
    >>> scope = {"type": "http", "method": "GET", "path": "/nowhere", "query_string": b"",
    ...          "headers": [(b"accept", b"text/html,*/*")]}
    >>> asyncio.run(unknown_page(json_404)(scope, None, send))
    >>> sent[0]["status"], b"no page at /nowhere" in sent[1]["body"]
    (404, True)
    >>> sent.clear()
    >>> asyncio.run(unknown_page(json_404)({**scope, "path": "/api/v1/nowhere"}, None, send))
    >>> sent
    ['fallback']
    """

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        accepted = dict(scope.get("headers") or []).get(b"accept", b"")
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and not path.startswith("/api/")
            and b"text/html" in accepted
        ):
            response = render(
                Request(scope, receive),
                "error.html.j2",
                status=404,
                message=f"no page at {path[:200]}",
            )
            await response(scope, receive, send)
            return
        await fallback(scope, receive, send)

    return answer
