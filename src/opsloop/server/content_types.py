"""The body types the routes accept: JSON routes ``application/json``, uploads octets.

A browser sends a ``text/plain``, form or untyped POST to another site without asking it
first (no CORS preflight); an ``application/json`` or ``application/octet-stream`` body
from another origin needs a preflight, which this server never grants unless its owner
allows that origin. So a route accepts a body only with its own type, and anything else is
a 415 naming the rule. A request with no body and no Content-Type passes (a GET, a POST
that carries nothing).

>>> body_type("application/json; charset=utf-8")
'application/json'
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request

JSON = "application/json"
OCTETS = "application/octet-stream"


def body_type(header: str) -> str:
    """The media type of a Content-Type header, without parameters, in lower case.

    >>> body_type(" Text/Plain ;charset=x")
    'text/plain'
    """
    return header.split(";", 1)[0].strip().lower()


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    return "transfer-encoding" in request.headers


def require_body_type(media_type: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing (415) a request body whose Content-Type is not ``media_type``.

    >>> from fastapi import Depends, FastAPI
    >>> from fastapi.testclient import TestClient
    >>> app = FastAPI()
    >>> @app.post("/scores", dependencies=[Depends(require_body_type(JSON))])
    ... def scores() -> dict:
    ...     return {"stored": True}
    >>> client = TestClient(app)
    >>> client.post("/scores", json={"auc": 0.9}).status_code
    200
    >>> refused = client.post("/scores", content=b"auc,0.9", headers={"Content-Type": "text/csv"})
    >>> refused.status_code
    415
    >>> print(refused.json()["detail"])
    Content-Type: this route accepts only application/json bodies, got Content-Type 'text/csv'
    """

    async def dependency(request: Request) -> None:
        header = request.headers.get("content-type")
        if header is None and not _has_body(request):
            return
        if header is None or body_type(header) != media_type:
            given = "no Content-Type" if header is None else f"Content-Type {header!r}"
            raise HTTPException(
                415, f"Content-Type: this route accepts only {media_type} bodies, got {given}"
            )

    dependency.__name__ = "require_" + media_type.split("/")[-1].replace("-", "_")
    return dependency


require_json = require_body_type(JSON)
require_octets = require_body_type(OCTETS)
