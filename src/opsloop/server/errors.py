"""How the server answers an exception: the one place errors are mapped to HTTP.

An :class:`~opsloop.errors.OpsloopError` (a caller's mistake) is answered with its status
and ``{"detail", "code", "error"}``: the message, the stable code, and the class name, which
clients that know the class raise again. A body that breaks a wire model is FastAPI's 422
with the field's location, and code ``invalid_argument``. Any other exception is our
defect: a 500 with ``{"detail": "internal error <id>", "code": "internal", "error_id"}``,
whose traceback is logged (logger ``opsloop.server``) under the same id and never sent.

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> from opsloop.errors import NotFoundError
>>> app = FastAPI()
>>> install_error_handlers(app)
>>> @app.get("/missing")
... def missing():
...     raise NotFoundError("unknown thing 'x'")
>>> @app.get("/broken")
... def broken():
...     return 1 / 0
>>> client = TestClient(app)
>>> client.get("/missing").json()
{'detail': "unknown thing 'x'", 'code': 'not_found', 'error': 'NotFoundError'}
>>> answer = client.get("/broken")
>>> answer.status_code, answer.json()["code"], answer.json()["detail"].startswith("internal")
(500, 'internal', True)
"""

from __future__ import annotations

import json
import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsloop.errors import BY_CODE, InvalidArgumentError, OpsloopError, OverLimitError
from opsloop.store.artifacts import MissingArtifactError, TamperedArtifactError

logger = logging.getLogger("opsloop.server")

# The code of an HTTPException raised by the server itself (authentication, unknown route).
_CODE_BY_STATUS = {kind.status: kind.code for kind in BY_CODE.values()}


#: How much of a refused value a 422 repeats: enough to recognise it, never the whole of a
#: large one (a 1 MB name would otherwise come back in a 1 MB answer).
MAX_ECHOED_CHARACTERS = 200


def _excerpted(item: dict) -> dict:
    """A validation error made safe to answer: its ``input`` cut to an excerpt when it is
    large, and written as text when it holds a number JSON cannot carry (NaN, Infinity, or
    a literal such as ``1e400`` that Python reads as infinite), as may its ``ctx``.

    >>> _excerpted({"loc": ["body", "name"], "input": "x" * 1_000})["input"][-30:]
    'xx... (1000 characters in all)'
    >>> _excerpted({"loc": ["body", "n"], "input": 5})["input"]
    5
    >>> _excerpted({"loc": ["body"], "input": {"steps": [float("nan"), float("inf")]}})["input"]
    '{"steps": [NaN, Infinity]}'
    """
    value = item.get("input")
    safe = {**item, "ctx": _finite(item["ctx"])} if "ctx" in item else item
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=str, allow_nan=False)
        except ValueError:
            # The JSON literal the client sent (NaN, Infinity), as text the answer can carry.
            text = json.dumps(value, default=str)
            safe = {**safe, "input": text}
    if len(text) <= MAX_ECHOED_CHARACTERS:
        return safe
    return {**safe, "input": f"{text[:MAX_ECHOED_CHARACTERS]}... ({len(text)} characters in all)"}


def _finite(context: object) -> object:
    """An error's context with every value JSON cannot carry written as text (a bound such
    as ``le=inf`` is one).

    >>> _finite({"le": float("inf"), "pattern": "^a$"})
    {'le': 'inf', 'pattern': '^a$'}
    """
    if not isinstance(context, dict):
        return str(context)
    return {key: value if _carried(value) else str(value) for key, value in context.items()}


def _carried(value: object) -> bool:
    """Whether ``value`` is JSON an answer can carry as it is."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _answer(error: OpsloopError) -> JSONResponse:
    message, name = str(error), type(error).__name__
    if isinstance(error, MissingArtifactError):
        # Named as its older base class, which clients raise again; the store's folder stays here.
        message, name = f"no artifact with sha256 {error.sha256}", "FileNotFoundError"
    elif isinstance(error, TamperedArtifactError):
        # The message names both hashes, not where the server keeps the bytes.
        message = (
            f"artifact {error.expected} is refused: expected sha256 {error.expected}, "
            f"found sha256 {error.found}"
        )
    elif isinstance(error, OSError) and error.args:
        # str() of an OSError made with one argument is that argument; keep it plain.
        message = str(error.args[0])
    response = JSONResponse(
        {"detail": message, "code": error.code, "error": name}, status_code=error.status
    )
    if isinstance(error, TamperedArtifactError):
        response.headers["X-Opsloop-Expected-Sha256"] = error.expected
        response.headers["X-Opsloop-Found-Sha256"] = error.found
    if isinstance(error, OverLimitError) and error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


class _InternalErrors:
    """Answer an exception no handler took with a 500 that names only an error id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if started:  # part of the answer is sent: the connection can only be dropped
                raise
            error_id = uuid.uuid4().hex
            logger.exception(
                "internal error %s on %s %s", error_id, scope.get("method"), scope.get("path")
            )
            body = {"detail": f"internal error {error_id}", "code": "internal"}
            response = JSONResponse({**body, "error_id": error_id}, status_code=500)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Map exceptions to answers on ``app`` (call before adding other middleware, so that
    this one sits closest to the routes)."""

    async def expected(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, OpsloopError)
        return _answer(error)

    async def invalid_body(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        details = [_excerpted(item) for item in jsonable_encoder(error.errors())]
        body = {"detail": details, "code": InvalidArgumentError.code}
        return JSONResponse(body, status_code=422)

    async def refused(_request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        body: dict = {"detail": error.detail}
        if error.status_code in _CODE_BY_STATUS:
            body["code"] = _CODE_BY_STATUS[error.status_code]
        if error.status_code in (204, 304):  # answers that may carry no body
            return Response(status_code=error.status_code, headers=error.headers)
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)

    app.add_exception_handler(OpsloopError, expected)
    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(HTTPException, refused)
    app.add_middleware(_InternalErrors)
