"""How many bytes a client may send: a bound on JSON bodies and one on artifact uploads.

A request whose ``Content-Length`` is over its bound is answered 413 before its body is
read; a body sent without a length (chunked) is counted as it arrives and refused the moment
it passes the bound, so no body larger than the bound is ever held. JSON bodies get the
smaller bound because decoding one takes many times its size in memory; artifact uploads
are streamed to disk (:mod:`opsloop.server.artifact_routes`), so theirs only bounds disk use.

The same middleware refuses a URL whose path or query holds a NUL character (``%00``) with
a 422 naming the path or the parameter: names are looked up in the database, and PostgreSQL
refuses NUL in text with an error that would otherwise be a 500.

The bounds come from ``OPSLOOP_MAX_JSON_BYTES`` and ``OPSLOOP_MAX_UPLOAD_BYTES`` (bytes, or
with a ``K``, ``M`` or ``G`` suffix for KiB, MiB, GiB) and default to 16 MiB and 4 GiB. A
metric batch is also bounded in points (:data:`~opsloop.tracking.limits.MAX_BATCH_POINTS`),
and the HTTP client splits larger batches to fit.

>>> RequestLimits.from_environment({"OPSLOOP_MAX_JSON_BYTES": "8M"}).max_json_bytes
8388608
>>> RequestLimits().limit_for("PUT", "/api/v1/artifacts/ab") == RequestLimits().max_upload_bytes
True
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_JSON_BYTES = 16 << 20
DEFAULT_MAX_UPLOAD_BYTES = 4 << 30
_UPLOAD = re.compile(r"^/api/v1/(artifacts/[^/]+|runs/[^/]+/artifacts)/?$")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(name: str, text: str) -> int:
    """A size in bytes from ``text`` (``1048576``, ``512K``, ``32M``, ``4G``).

    >>> parse_size("OPSLOOP_MAX_UPLOAD_BYTES", "4G")
    4294967296
    >>> parse_size("OPSLOOP_MAX_UPLOAD_BYTES", "lots")
    Traceback (most recent call last):
    ValueError: OPSLOOP_MAX_UPLOAD_BYTES must be a positive number of bytes such as 1048576 \
or 32M, got 'lots'
    """
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    size = int(match.group(1)) * _UNITS[match.group(2).upper()] if match else 0
    if size < 1:
        raise ValueError(
            f"{name} must be a positive number of bytes such as 1048576 or 32M, got {text!r}"
        )
    return size


class RequestTooLarge(HTTPException):
    """A request body over its bound (a 413 naming the bound and how to raise it)."""

    def __init__(self, kind: str, limit: int, setting: str, size: int | None = None) -> None:
        sent = "more than that" if size is None else f"{size} bytes"
        super().__init__(
            413,
            f"request body: {kind} bodies may have at most {limit} bytes, this one has {sent} "
            f"(the server's {setting} sets the bound)",
        )


@dataclass(frozen=True)
class RequestLimits:
    """The bounds on request bodies, in bytes.

    >>> RequestLimits(max_json_bytes=1024).limit_for("POST", "/api/v1/runs")
    1024
    """

    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> RequestLimits:
        """The bounds set by ``OPSLOOP_MAX_JSON_BYTES`` and ``OPSLOOP_MAX_UPLOAD_BYTES``.

        >>> RequestLimits.from_environment({}).max_upload_bytes
        4294967296
        """
        environment = os.environ if environment is None else environment
        sizes = {}
        for field, name in (
            ("max_json_bytes", "OPSLOOP_MAX_JSON_BYTES"),
            ("max_upload_bytes", "OPSLOOP_MAX_UPLOAD_BYTES"),
        ):
            if environment.get(name):
                sizes[field] = parse_size(name, environment[name])
        return cls(**sizes)

    def is_upload(self, method: str, path: str) -> bool:
        """Whether the request uploads an artifact (its body is bytes, not JSON).

        >>> RequestLimits().is_upload("POST", "/api/v1/runs/abc/artifacts")
        True
        """
        return method in ("PUT", "POST") and _UPLOAD.match(path) is not None

    def limit_for(self, method: str, path: str) -> int:
        """The bound on this request's body."""
        return self.max_upload_bytes if self.is_upload(method, path) else self.max_json_bytes

    def error_for(self, method: str, path: str, size: int | None = None) -> RequestTooLarge:
        """The 413 for a body over this request's bound."""
        if self.is_upload(method, path):
            return RequestTooLarge(
                "upload", self.max_upload_bytes, "OPSLOOP_MAX_UPLOAD_BYTES", size
            )
        return RequestTooLarge("JSON", self.max_json_bytes, "OPSLOOP_MAX_JSON_BYTES", size)


class RequestSizeLimit:
    """ASGI middleware that refuses bodies over :class:`RequestLimits` with a 413.

    >>> RequestSizeLimit(app=None, limits=RequestLimits()).limits.max_json_bytes
    16777216
    """

    def __init__(self, app: ASGIApp, limits: RequestLimits | None = None) -> None:
        self.app = app
        self.limits = limits or RequestLimits.from_environment()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        refused = _nul_in_url(path, scope.get("query_string", b""))
        if refused is not None:
            response = JSONResponse({"detail": refused, "error": "ValueError"}, status_code=422)
            await response(scope, receive, send)
            return
        limit = self.limits.limit_for(method, path)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Answered before the body is read: the client learns at once, nothing is held.
            error = self.limits.error_for(method, path, int(declared))
            await _refuse(error, scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise self.limits.error_for(method, path)
            return message

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except RequestTooLarge as error:
            # Raised where no handler turned it into a response (outside a route).
            if started:
                raise
            await _refuse(error, scope, receive, watched)


def _nul_in_url(path: str, query: bytes) -> str | None:
    """What names a NUL character in the URL, or ``None``.

    >>> _nul_in_url("/api/v1/runs/a" + chr(0), b"")
    'path: NUL characters are not allowed (at position 14)'
    >>> _nul_in_url("/x", b"model=a%00b")
    "query parameter 'model': NUL characters are not allowed"
    """
    if "\x00" in path:
        return f"path: NUL characters are not allowed (at position {path.index(chr(0))})"
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return f"query parameter {name!r}: NUL characters are not allowed"
    return None


def install_request_limits(app, limits: RequestLimits | None = None) -> RequestLimits:
    """Bound ``app``'s request bodies (``limits``, or those the environment sets).

    >>> from fastapi import FastAPI
    >>> install_request_limits(FastAPI(), RequestLimits(max_json_bytes=10)).max_json_bytes
    10
    """
    limits = limits or RequestLimits.from_environment()
    app.state.request_limits = limits
    app.add_middleware(RequestSizeLimit, limits=limits)

    async def too_large(_request: Request, error: RequestTooLarge) -> JSONResponse:
        return _response(error)

    app.add_exception_handler(RequestTooLarge, too_large)
    return limits


def _response(error: RequestTooLarge) -> JSONResponse:
    # The rest of the body was not read: the connection cannot carry another request.
    return JSONResponse(
        {"detail": error.detail, "error": type(error).__name__},
        status_code=413,
        headers={"Connection": "close"},
    )


async def _refuse(error: RequestTooLarge, scope: Scope, receive: Receive, send: Send) -> None:
    await _response(error)(scope, receive, send)
