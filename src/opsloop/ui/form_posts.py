"""Forms that change state: read a posted form and refuse it unless it came from our page.

A change is a plain HTML form (it works without JavaScript) posted with the session cookie.
Three checks stand between another site and a change made in a signed-in user's name:

- the cookie is ``SameSite=Strict``, so a browser does not send it with another site's
  form;
- the ``Origin`` header, when the browser sends one, must name this server;
- the form must carry the session's CSRF token (:func:`csrf_token`), which our pages put
  in a hidden field and another site cannot read or compute.

The CSRF token is an HMAC keyed with the session's id (the secret the session cookie
holds; for a page requested with an ``Authorization`` header, that API token): every
server worker computes it without more shared state than the session, it differs per
session, dies with it, and reveals nothing of the id. A missing or wrong one is a 403 and
nothing changes. Signing in and out are checked the same way (:mod:`.login_pages`).

After the checks, the form's action calls the same service operation as the REST API,
with the same least role (:func:`require_operation_role`); the service applies its own
finer rules (approvals, distinct approvers) and writes the audit entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from fastapi import Request

from opsloop.contract.operation import ServiceTable
from opsloop.errors import DeniedError, InvalidArgumentError, OpsloopError
from opsloop.registry import User

#: The hidden field that carries the CSRF token.
CSRF_FIELD = "csrf_token"
#: The most fields a dashboard form may post (a weights form has one per variant).
MAX_FIELDS = 1_100
_CSRF_PURPOSE = b"opsloop dashboard form v1"


class FormUnsupported(OpsloopError):
    """The body is not a URL-encoded form."""

    status = 415
    code = "unsupported_media_type"


@dataclasses.dataclass(frozen=True)
class FormProblem:
    """Why a form's change was refused, shown on the page beside that form: which ``form``
    of the page, the ``message`` (it names the field), the ``field`` to mark invalid, the
    HTTP ``status`` of the page, the ``values`` posted (filled in again), and where the
    page can be ``reload``-ed when the change was refused because what it showed moved on.

    >>> FormProblem("weights", "weight.b: must be a number, got 'x'", "weight.b").status
    422
    """

    form: str
    message: str
    field: str | None = None
    status: int = 422
    values: Mapping[str, str] = dataclasses.field(default_factory=dict)
    reload: str | None = None

    @classmethod
    def of(
        cls, form: str, error: OpsloopError, values: Mapping[str, str], field: str | None = None
    ) -> FormProblem:
        """The problem a service's error makes for ``form``.

        >>> FormProblem.of("alias", DeniedError("alias: protected"), {}, "alias").status
        403
        """
        return cls(form, str(error), field, error.status, dict(values))


def csrf_token(session_secret: str, purpose: bytes = _CSRF_PURPOSE) -> str:
    """The CSRF token of the session whose secret (its id) is ``session_secret``, for
    forms of ``purpose`` (the login form has its own).

    >>> a, b = csrf_token("session-a"), csrf_token("session-b")
    >>> len(a), a == csrf_token("session-a"), a == b, a == csrf_token("session-a", b"login")
    (64, True, False, False)
    """
    return hmac.new(session_secret.encode("utf-8"), purpose, hashlib.sha256).hexdigest()


def csrf_matches(given: str, session_secret: str, purpose: bytes = _CSRF_PURPOSE) -> bool:
    """Whether ``given`` is the CSRF token of ``session_secret`` (compared in constant
    time).

    >>> csrf_matches(csrf_token("s"), "s"), csrf_matches("", "s")
    (True, False)
    """
    expected = csrf_token(session_secret, purpose).encode("ascii")
    return hmac.compare_digest(given.encode("utf-8"), expected)


def same_origin(request: Request) -> bool:
    """Whether a post's ``Origin``, when the browser sent one, names this server.

    >>> def post(*headers):
    ...     return Request({"type": "http", "headers": [(b"host", b"ops.example"), *headers]})
    >>> same_origin(post((b"origin", b"https://ops.example"))), same_origin(post())
    (True, True)
    >>> same_origin(post((b"origin", b"https://evil.example")))
    False
    """
    # The host and port are compared, not the scheme: behind a proxy that ends TLS the
    # page's origin is https while the request reaching us is http.
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host")


def parse_form(body: bytes) -> dict[str, str]:
    """A URL-encoded form body as one value per field (the last one given); a field may be
    empty.

    >>> parse_form(b"weight.a=0.5&reason=&weight.b=0.5")
    {'weight.a': '0.5', 'reason': '', 'weight.b': '0.5'}
    """
    try:
        fields = parse_qs(
            body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=MAX_FIELDS
        )
    except ValueError:
        raise InvalidArgumentError(f"form: at most {MAX_FIELDS} fields") from None
    return {name: values[-1] for name, values in fields.items()}


async def posted_form(request: Request, session_secret: str) -> dict[str, str]:
    """The fields of a form posted from one of our pages in this session; a 403 naming
    ``csrf_token`` (or the origin) otherwise, before anything is changed."""
    if not same_origin(request):
        raise DeniedError("form: it must be posted from this server's own page")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormUnsupported("form: the body must be application/x-www-form-urlencoded")
    fields = parse_form(await request.body())
    given = fields.pop(CSRF_FIELD, "")
    if not csrf_matches(given, session_secret):
        raise DeniedError(
            f"{CSRF_FIELD}: missing or not this session's; reload the page and submit again"
        )
    return fields


def require_operation_role(user: User, table: ServiceTable, method: str) -> None:
    """Refuse ``user`` (403) unless their role is the least the REST API asks for
    ``table``'s operation ``method``, in the API's words.

    >>> from opsloop.serving.review_service import REVIEW_OPERATIONS
    >>> require_operation_role(User("ana", "editor"), REVIEW_OPERATIONS, "answer")
    >>> require_operation_role(User("vic", "viewer"), REVIEW_OPERATIONS, "answer")
    Traceback (most recent call last):
    opsloop.errors.DeniedError: user 'vic' has role 'viewer'; this needs 'editor'
    """
    role = table.operation(method).role
    if not user.can(role):
        raise DeniedError(f"user {user.name!r} has role {user.role!r}; this needs {role!r}")


def chosen_action(fields: dict, actions: dict[str, str]) -> str:
    """The button pressed (the form's ``do`` field), one of ``actions``.

    >>> chosen_action({"do": "move"}, {"move": "set_alias", "approve": "approve"})
    'move'
    >>> chosen_action({}, {"move": "set_alias", "approve": "approve"})
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: do: must be one of move, approve, got ''
    """
    action = fields.get("do", "")
    if action not in actions:
        raise InvalidArgumentError(f"do: must be one of {', '.join(actions)}, got {action[:40]!r}")
    return action
