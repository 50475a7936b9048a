r"""The exceptions opsloop raises for a caller's mistake, each with an HTTP status and a code.

This is a base module: every layer may import it (it imports nothing from opsloop). A
caller's mistake is an :class:`OpsloopError`; anything else raised inside opsloop is a
defect. The server answers an ``OpsloopError`` with its ``status`` and ``code``, and any
other exception with a 500 carrying an error id; the HTTP clients raise the class the code
names, so code behaves the same against a local store and a server.

- :class:`NotFoundError`: 404, ``not_found``
- :class:`InvalidArgumentError`: 422, ``invalid_argument``
- :class:`ConflictError`: 409, ``conflict``
- :class:`DeniedError`: 403, ``denied``
- :class:`UnauthenticatedError`: 401, ``unauthenticated``
- :class:`UnavailableError`: 503, ``unavailable``

``InvalidArgumentError`` is also a ``ValueError``, ``DeniedError`` and
``UnauthenticatedError`` are ``PermissionError``\ s, and the named errors keep the bases they
had before (``UnknownRunError`` is a ``ValueError``, ``PermissionDenied`` a
``PermissionError``), so existing ``except`` clauses still catch them.

>>> error = error_for_code("not_found", "unknown run id 'nope'")
>>> error, error.status, error.code
(NotFoundError("unknown run id 'nope'"), 404, 'not_found')
>>> try:
...     raise InvalidArgumentError("depth: must be a positive integer, got 0")
... except ValueError as caught:  # an except clause written for ValueError still catches it
...     print(caught.status, caught.code, caught)
422 invalid_argument depth: must be a positive integer, got 0
"""

from __future__ import annotations


class OpsloopError(Exception):
    """A caller's mistake: the request cannot be done as asked (``status``, ``code``).

    >>> OpsloopError("no").code, OpsloopError.status
    ('error', 400)
    """

    status: int = 400
    code: str = "error"


class NotFoundError(OpsloopError):
    """The run, experiment, model, version, alias, deployment, user or artifact named does
    not exist.

    >>> NotFoundError.status, NotFoundError.code
    (404, 'not_found')
    """

    status = 404
    code = "not_found"


class InvalidArgumentError(OpsloopError, ValueError):
    """An argument breaks a rule; the message names the field and the rule.

    >>> try:
    ...     raise InvalidArgumentError("max_results must be a positive integer, got 0")
    ... except ValueError as error:
    ...     (error.status, error.code)
    (422, 'invalid_argument')
    """

    status = 422
    code = "invalid_argument"


class ConflictError(OpsloopError):
    """The request contradicts what is stored (an artifact whose bytes changed).

    >>> ConflictError.status, ConflictError.code
    (409, 'conflict')
    """

    status = 409
    code = "conflict"


class AlreadyDoneError(ConflictError, ValueError):
    """The change contradicts one already made: a user that exists, a param already set
    to another value, an approval the same person already gave. A 409, and still a
    ``ValueError`` for code written before it had its own class.

    >>> try:
    ...     raise AlreadyDoneError("user 'ana' already exists")
    ... except ValueError as error:
    ...     (error.status, error.code)
    (409, 'conflict')
    """


class DeniedError(OpsloopError, PermissionError):
    """The acting user is known but not allowed to do this.

    >>> DeniedError.status, DeniedError.code
    (403, 'denied')
    """

    status = 403
    code = "denied"


class UnauthenticatedError(OpsloopError, PermissionError):
    """The request does not say, or does not prove, who is acting.

    >>> UnauthenticatedError.status, UnauthenticatedError.code
    (401, 'unauthenticated')
    """

    status = 401
    code = "unauthenticated"


class UnavailableError(OpsloopError):
    """The request is well formed but cannot be answered now: a deployment whose model
    version could not be loaded (untrusted, unservable) is not ready.

    >>> UnavailableError.status, UnavailableError.code
    (503, 'unavailable')
    """

    status = 503
    code = "unavailable"


class OverLimitError(OpsloopError):
    """The request is well formed but a bound of what the server keeps for the caller is
    reached: retry after ``retry_after_s`` seconds (when known), once some of it is gone.

    >>> error = OverLimitError("full", retry_after_s=30)
    >>> error.status, error.code, error.retry_after_s
    (429, 'over_limit', 30)
    """

    status = 429
    code = "over_limit"

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        #: Seconds after which a retry may find room; ``None`` when not known.
        self.retry_after_s = retry_after_s


#: Each code to the class of the hierarchy that carries it.
BY_CODE: dict[str, type[OpsloopError]] = {
    kind.code: kind
    for kind in (
        NotFoundError,
        InvalidArgumentError,
        ConflictError,
        DeniedError,
        UnauthenticatedError,
        UnavailableError,
        OverLimitError,
    )
}


def error_for_code(code: object, message: str) -> OpsloopError | None:
    """The exception of the hierarchy for ``code`` with ``message``; None for an unknown code.

    >>> error_for_code("conflict", "changed"), error_for_code("teapot", "x")
    (ConflictError('changed'), None)
    """
    kind = BY_CODE.get(code) if isinstance(code, str) else None
    return None if kind is None else kind(message)
