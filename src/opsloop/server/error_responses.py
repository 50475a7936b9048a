"""The error answers the API can give, declared once for the OpenAPI document.

Every refusal is a JSON object with ``detail`` (a message naming the field and the rule, or,
for a body that breaks a wire model, FastAPI's list of the fields at fault) and, where the
server names it, ``error`` (the kind of refusal, such as ``UnknownRunError``). The routers
are included with :func:`error_responses` for the codes their routes can answer with, so the
document lists every status a client may see; a 500 is never listed, because one is always
a defect of the server.

>>> sorted(error_responses(401, 404))
[401, 404]
>>> ErrorOut(detail="unknown run id 'x'", error="UnknownRunError").error
'UnknownRunError'
>>> error_responses(404)[404]["description"]
'Not found: an unknown run, experiment, model, version, alias, deployment or artifact'
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """The body of every 4xx answer."""

    detail: str | list[dict[str, Any]] = Field(
        description="what was refused and why; for a body that breaks the request model, "
        "one entry per field at fault (loc, msg, type)"
    )
    error: str | None = Field(
        default=None, description="the kind of refusal, when the server names one"
    )


_DESCRIPTIONS = {
    400: "Bad request: a Host header the server does not answer to, or a body that is not "
    "valid JSON text",
    401: "Unauthenticated: no API token, an unknown or revoked one, or (with no users) no "
    "installation token",
    403: "Denied: the caller's role does not allow the operation",
    404: "Not found: an unknown run, experiment, model, version, alias, deployment or artifact",
    409: "Conflict: stored bytes that no longer match their sha256 (both hashes named)",
    413: "Request body over the server's bound (OPSLOOP_MAX_JSON_BYTES, OPSLOOP_MAX_UPLOAD_BYTES)",
    415: "A request body whose Content-Type is not the one the route accepts",
    422: "Invalid input: the message names the field and the rule",
    429: "Over a bound of what the server keeps for the caller (the message names it; "
    "Retry-After says when to retry)",
    503: "Unavailable: a served deployment whose model version could not be loaded",
}

# Answered before any route: the Host check (400), the size bound (413), the body type (415),
# the caller (401), and the wire models and the store's own rules (422).
EVERY_ROUTE = (400, 401, 413, 415, 422)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` declaration of ``codes``, each with :class:`ErrorOut` as its body.

    >>> error_responses(418)
    Traceback (most recent call last):
    ValueError: status 418 is not one of the API's error answers: 400, 401, 403, 404, 409, 413, \
415, 422, 429, 503
    """
    for code in codes:
        if code not in _DESCRIPTIONS:
            known = ", ".join(str(known) for known in _DESCRIPTIONS)
            raise ValueError(f"status {code} is not one of the API's error answers: {known}")
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in sorted(codes)}
