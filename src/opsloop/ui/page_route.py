"""The route class of every dashboard page: errors become pages, not JSON."""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

from opsloop.errors import OpsloopError
from opsloop.ui.rendering import render
from opsloop.ui.session_check import LoginRequired, login_redirect


class PageRoute(APIRoute):
    """A page route: a missing session sends the browser to log in, and a caller's mistake
    (:class:`~opsloop.errors.OpsloopError`) is a page naming it, with its status."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as error:
                return login_redirect(request, error)
            except OpsloopError as error:
                return render(request, "error.html.j2", status=error.status, message=str(error))
            except RequestValidationError as error:
                first = error.errors()[0]
                field = ".".join(str(part) for part in first["loc"][1:]) or "request"
                return render(
                    request, "error.html.j2", status=422, message=f"{field}: {first['msg']}"
                )
            except HTTPException as error:
                if error.status_code >= 500:
                    raise
                return render(
                    request, "error.html.j2", status=error.status_code, message=error.detail
                )

        return handle
